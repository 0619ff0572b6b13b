r"""The fit summary: a table of each scalar latent's mean, sd and quantiles, with the fit's facts above it and
the diagnostics' lines below (``print(result.summary())``, ``varinf fit``).

::

    summarize(result) -> Summary(rows, quantile_levels, header, footer)
        rows     q's own draws, or the diagnostics' draws weighted by PSIS (result.psis_corrected);
                 moments and quantiles by varinf.utils.weighted
        header   what ran and how long; ELBO; convergence; route; minibatches; skipped steps; which estimates
                 the table shows and what res.draws() returns
        footer   Diagnostics.summary_lines(); the subsample note of a large-data fit

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

from ..utils.weighted import weighted_mean_sd, weighted_quantiles

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
              seed: int | None = None) -> Summary:  # fmt: skip
    """The :class:`Summary` of ``result``: q's own from ``n`` draws, or PSIS-corrected from the diagnostics'
    draws when ``result.psis_corrected``."""
    rows = _rows(result, n, quantiles, seed)
    footer = list(result.diagnostics.summary_lines()) if result.diagnostics is not None else []
    describe = getattr(result.draws_model, "describe", None)
    if describe is not None:
        footer.append(describe())
    return Summary(rows, tuple(quantiles), _header(result, n, seed), footer)


def _rows(result: FitResult, n: int, quantiles: tuple[float, ...], seed: int | None) -> list[SummaryRow]:
    if result.psis_corrected:
        d = result.diagnostics
        z, w = d.draws, d.psis.weights.double()
        with torch.no_grad():
            z = {**z, **result.model.derived_quantities(z)}
    else:
        z, w = result.draws(n, seed, corrected=False), None
    rows = []
    names = getattr(result.model, "element_names", _element_names)  # a model's coords name its scalars
    qs = torch.tensor(quantiles, dtype=torch.float64)
    for key, value in z.items():
        v = value.double().reshape(value.shape[0], -1)
        mean, sd = weighted_mean_sd(v, w)
        qv = weighted_quantiles(v, qs, w)
        for j, name in enumerate(names(key, tuple(value.shape[1:]))):
            rows.append(SummaryRow(name, mean[j].item(), sd[j].item(), tuple(qv[:, j].tolist())))
    return rows


def _element_names(name: str, shape: tuple[int, ...]) -> list[str]:
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, idx))}]" for idx in itertools.product(*(range(s) for s in shape))]


def _header(result: FitResult, n: int, seed: int | None) -> list[str]:
    elbo, se = _elbo(result, n, seed)
    status = "converged" if result.converged else "NOT converged"
    route = f" ({' -> '.join(result.route)})" if result.route else ""
    lr = f", lr={result.lr:g}" if math.isfinite(result.lr) else ""
    extra = f" (+ {result.diagnostics_time:.2f} s diagnostics)" if result.diagnostics_time else ""
    lines = [
        f"{getattr(result.model, 'name', 'model')}: {result.family_label} family by {result.method}{route}, "
        f"{result.num_steps} steps ({result.grad_evals} gradient evaluations), {result.wall_time:.2f} s{extra}{lr}",
        f"ELBO {elbo:.3f} ± {se:.3f} nats; {status} ({result.convergence_reason})"
        + (f"; parameters averaged over the last {result.averaged_steps} steps" if result.averaged_steps else ""),
    ]
    if result.route_reason:
        lines.append(f"route: {result.route_reason}")
    if result.batch_size is not None:
        rows_total = result.model.num_rows
        lines.append(
            f"minibatches of {result.batch_size:,} of {rows_total:,} rows: "
            f"{result.num_steps * result.batch_size / rows_total:.3g} epochs (likelihood scaled by N/B, control "
            "variate at q's mean)"
        )
    if result.skipped_steps:
        lines.append(
            f"{result.skipped_steps} step(s) had a non-finite bound and were skipped; recovered "
            f"{result.recoveries} time(s) by stepping back with a smaller step size"
        )
    lines.append(_which_estimates(result))
    return lines


def _which_estimates(result: FitResult) -> str:
    """Which estimates the table shows, and which draws ``res.draws()`` returns (the same ones)."""
    d = result.diagnostics
    if result.psis_corrected:
        return (
            f"estimates below are PSIS-corrected ({d.num_draws} draws of q, k-hat {d.khat:.2f}, ESS {d.ess:.0f}); "
            f"q's own means differ by up to {d.psis_shift:.2f} posterior sds ({d.psis_shift_at}). res.draws() are "
            "PSIS-resampled draws that agree with them; q's own: res.draws(corrected=False)"
        )
    if d is not None and result.report == "psis":
        return (f"estimates below are q's own: k-hat {d.khat:.2f} allows no trustworthy PSIS correction; "
                "res.draws() are q's draws")  # fmt: skip
    return "estimates below are q's own; res.draws() are q's draws"


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
