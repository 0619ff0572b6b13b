r"""The fit summary: a table of each scalar latent's mean, sd and quantiles, with the fit's facts above it and
the diagnostics' lines below (``print(result.summary())``, ``varinf fit``).

::

    summarize(result) -> Summary(rows, quantile_levels, header, footer)
        rows     q's own draws, or the diagnostics' draws weighted by PSIS (result.psis_corrected), chunk by
                 chunk (optim/draw_stream.py: streamed_moments; gathered moments by varinf.utils.weighted)
        header   what ran (model, family, method, route), its iterations against the budget, gradient
                 evaluations and time; one ELBO line; a switch to ADVI explained; minibatches; skipped steps;
                 which estimates the table shows
        footer   Diagnostics.summary_lines(): one line per diagnostic with its verdict, the fit's verdict, how
                 to read them; the subsample note of a large-data fit

Short by default (a well-behaved fit's summary is a few lines beside its table, each under 100 characters);
``verbose=True`` (``res.summary(verbose=True)``, ``varinf fit --explain``) adds the long explanations. Advice
names the reader's knobs (:mod:`varinf.advice`: Python names in Python, flags in the CLI).

Everything here reads a finished :class:`~varinf.optim.result.FitResult` and its
:class:`~varinf.diagnostics.Diagnostics` through their public attributes; nothing is computed that a result
does not already hold, except q's own draws for an uncorrected table.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ..advice import render
from .draw_stream import DrawStream, streamed_moments

if TYPE_CHECKING:  # (result.py imports this module: the type only)
    from .result import FitResult

__all__ = ["Summary", "SummaryRow", "summarize"]


@dataclass(frozen=True)
class SummaryRow:
    name: str
    mean: float
    sd: float
    quantiles: tuple[float, ...]


@dataclass
class Summary:
    """Per-scalar posterior summary (constrained space) plus fit information lines."""

    rows: list[SummaryRow]
    quantile_levels: tuple[float, ...]
    header: list[str] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        qnames = [f"{100 * q:g}%" for q in self.quantile_levels]
        cols = ["", "mean", "sd", *qnames]
        body = [[r.name, *(f"{v:.4g}" for v in (r.mean, r.sd, *r.quantiles))] for r in self.rows]
        widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(cols)]

        def fmt(cells):
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        return "\n".join([*self.header, fmt(cols), *(fmt(b) for b in body), *self.footer])

    def to_dict(self) -> dict[str, dict[str, float]]:
        out = {}
        for r in self.rows:
            d = {"mean": r.mean, "sd": r.sd}
            d.update({f"q{100 * q:g}": v for q, v in zip(self.quantile_levels, r.quantiles)})
            out[r.name] = d
        return out


def summarize(result: FitResult, n: int = 4000, quantiles: tuple[float, ...] = (0.05, 0.5, 0.95),
              seed: int | None = None, verbose: bool = False, route_reason: str | None = None) -> Summary:  # fmt: skip
    """The :class:`Summary` of ``result``: q's own from ``n`` draws, or PSIS-corrected from the diagnostics'
    draws when ``result.psis_corrected``.

    Short by default (a header, the table, one line per diagnostic, the verdict); ``verbose`` adds the long
    explanations (convergence rule, the route's start, thresholds and their sources, the evidence's full
    account, which draws ``res.draws()`` returns). ``route_reason`` replaces the route's explanation (the CLI
    says it in flags)."""
    rows = _rows(result, n, quantiles, seed)
    footer = list(result.diagnostics.summary_lines(verbose)) if result.diagnostics is not None else []
    describe = getattr(result.draws_model, "describe", None)
    if describe is not None:
        footer.append(describe())
    return Summary(rows, tuple(quantiles), _header(result, n, seed, verbose, route_reason), footer)


def _rows(result: FitResult, n: int, quantiles: tuple[float, ...], seed: int | None) -> list[SummaryRow]:
    if result.psis_corrected:  # the diagnostics' draws, PSIS-weighted
        d = result.diagnostics
        chunks, S, w = (lambda: d.chunks(derived=True)), d.num_draws, d.psis.weights.double()
    else:  # n fresh draws of q, chunk by chunk (never n x D numbers at once for a large model)
        with torch.no_grad():
            stream = DrawStream(result.model, result.family(), n, seed)
        chunks, S, w = (lambda: stream.constrained_chunks(derived=True)), n, None
    shapes = {k: tuple(v.shape[1:]) for k, v in next(iter(chunks()))[1].items()}
    names = getattr(result.model, "element_names", _element_names)  # a model's coords name its scalars
    qs = torch.tensor(quantiles, dtype=torch.float64)
    rows = []
    for key, (mean, sd, qv) in streamed_moments(chunks, S, qs, w).items():
        mean, sd, qv = mean.tolist(), sd.tolist(), qv.T.tolist()
        for j, name in enumerate(names(key, shapes[key])):
            rows.append(SummaryRow(name, mean[j], sd[j], tuple(qv[j])))
    return rows


def _element_names(name: str, shape: tuple[int, ...]) -> list[str]:
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, idx))}]" for idx in itertools.product(*(range(s) for s in shape))]


def _header(result: FitResult, n: int, seed: int | None, verbose: bool, route_reason: str | None) -> list[str]:
    elbo, se = _elbo(result, n, seed)
    route = f" ({' -> '.join(result.route)})" if result.route and result.route != (result.method,) else ""
    extra = f" (+ {result.diagnostics_time:.2f} s diagnostics)" if result.diagnostics_time else ""
    status = "converged" if result.converged else f"NOT converged ({result.convergence_reason})"
    if not result.converged and result.convergence_reason.startswith("fixed budget"):
        status = "a fixed budget (no convergence check)"
    lines = [
        f"{getattr(result.model, 'name', 'model')}: {result.family_label} family by {result.method}{route}",
        f"{_steps(result)}, {status}; {result.grad_evals:,} gradient evaluations; {result.wall_time:.2f} s{extra}",
        f"ELBO {elbo:.3f} ± {se:.3f} nats" + _kl(result, elbo),
    ]
    reason = route_reason if route_reason is not None else result.route_reason
    if reason and (verbose or result.route == ("advi",)):  # a switch to ADVI is always explained
        lines.append(f"route: {reason}")
    if verbose:
        lines += _details(result)
    if result.batch_size is not None:
        rows_total = result.model.num_rows
        lines.append(
            f"minibatches of {result.batch_size:,} of {rows_total:,} rows: "
            f"{result.num_steps * result.batch_size / rows_total:.3g} epochs"
            + (" (likelihood scaled by N/B, control variate at q's mean)" if verbose else "")
        )
    if result.skipped_steps:
        lines.append(
            f"{result.skipped_steps} step(s) had a non-finite bound and were skipped; recovered "
            f"{result.recoveries} time(s) by stepping back with a smaller step size"
        )
    lines.append(_which_estimates(result, verbose))
    return lines


def _steps(result: FitResult) -> str:
    """The iterations that ran, in the method's own unit, against the budget (``max_steps`` caps each path of
    Pathfinder and each stage of ``auto``: a total above the cap says so)."""
    n, cap = result.num_steps, getattr(result.options, "max_steps", None)
    advi = result.method == "advi" or result.route == ("advi",)
    if result.method == "pathfinder":
        paths = getattr(result.options, "num_paths", None)
        text = f"{n} L-BFGS iterations" + (f" over {paths} paths" if paths else "")
        return text + (f" (at most {cap:,} each)" if cap and n > cap else "")
    text = f"{n:,} {'steps' if advi else 'iterations'}"
    if cap and n > cap:
        text += f" in all ({render('max_steps')}={cap:,} caps each stage)"
    return text


def _kl(result: FitResult, elbo: float) -> str:
    d = result.diagnostics
    if d is None or not d.evidence.reliable:
        return ""
    return f"; KL(q||posterior) ≈ {d.evidence.estimate - elbo:.3f} ± {d.evidence.se:.3f}"


def _details(result: FitResult) -> list[str]:
    """The verbose header's lines: the stopping rule, the step size, Pathfinder's path ELBO named for what it is."""
    lines = [f"convergence: {result.convergence_reason}"]
    if math.isfinite(result.lr):
        lines[-1] += f"; final step size {result.lr:g}"
    if result.averaged_steps:
        lines[-1] += f"; parameters averaged over the last {result.averaged_steps} steps"
    if result.method == "pathfinder":
        lines.append(
            "  (Pathfinder's 'best ELBO' is the largest of its paths' few-draw ELBO estimates: optimistic, and "
            "no bound on log p(x); the ELBO above is q's, the mixture of the paths' Gaussians)"
        )
    return lines


def _which_estimates(result: FitResult, verbose: bool) -> str:
    """Which estimates the table shows, and (verbose) which draws ``res.draws()`` returns (the same ones)."""
    d = result.diagnostics
    if result.psis_corrected:
        if not verbose:
            return f"estimates: PSIS-corrected, from {d.num_draws} draws of q (ESS {d.ess:.0f})"
        return (
            f"estimates below are PSIS-corrected ({d.num_draws} draws of q, k-hat {d.khat:.2f}, ESS {d.ess:.0f}); "
            f"q's own means differ by up to {d.psis_shift:.2f} posterior sds ({d.psis_shift_at}). "
            f"{render('corrected_draws')} that agree with them; q's own: {render('q_draws')}"
        )
    own = f"; {render('own_draws')}" if verbose else ""
    if d is not None and result.report == "psis":
        return f"estimates: q's own (k-hat {d.khat:.2f} allows no trustworthy PSIS correction){own}"
    return f"estimates: q's own{own}"


def _elbo(result: FitResult, n: int, seed: int | None) -> tuple[float, float]:
    """The diagnostics' ELBO when there are some (same q, no second pass over the data); else a fresh
    estimate, except for a model spread over processes (the summary may run on one process only: then
    the last window mean of the trace, with the spread of the window's estimates)."""
    d = result.diagnostics
    if d is not None:
        return float(d.elbo), float(d.elbo_se)
    if getattr(result.model, "distributed", False):
        w = result.elbo_trace[-min(len(result.elbo_trace), 100) :]
        return w.mean().item(), (w.std() / math.sqrt(max(len(w), 1))).item() if len(w) > 1 else math.nan
    return result.elbo(min(n, 2000), seed)
