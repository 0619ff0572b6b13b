"""``FitResult``: what a posterior-VI fit returns, and its summary table."""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from ..models.subsample import for_draws
from ..utils import seeded

__all__ = ["FitResult", "Summary", "SummaryRow"]


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
        fmt = lambda cells: "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )
        lines = [*self.header, fmt(cols), *(fmt(b) for b in body), *self.footer]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, dict[str, float]]:
        out = {}
        for r in self.rows:
            d = {"mean": r.mean, "sd": r.sd}
            d.update({f"q{100 * q:g}": v for q, v in zip(self.quantile_levels, r.quantiles)})
            out[r.name] = d
        return out


def _moments(v: Tensor, qs: Tensor, w: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """Mean, sd and quantiles ``qs`` of draws ``v`` ``(S, k)``, weighted by normalized ``w`` ``(S,)`` if given."""
    if w is None:
        return v.mean(0), v.std(0), torch.quantile(v, qs, dim=0)
    w = (w / w.sum()).to(v.device)
    mean = w @ v
    sd = (w @ (v - mean).square()).clamp_min(0).sqrt()
    order = v.argsort(0)
    cw = w[order].cumsum(0) - 0.5 * w[order]  # midpoint rule, as for unweighted quantiles
    sorted_v = v.gather(0, order)
    cols = [(cw[:, j].contiguous(), sorted_v[:, j]) for j in range(v.shape[1])]
    qv = torch.stack([torch.stack([_interp(q, c, x) for c, x in cols]) for q in qs.tolist()])
    return mean, sd, qv


def _interp(q: float, cw: Tensor, x: Tensor) -> Tensor:
    i = int(torch.searchsorted(cw, torch.tensor(q, dtype=cw.dtype)))
    if i == 0:
        return x[0]
    if i >= x.numel():
        return x[-1]
    t = (q - cw[i - 1]) / (cw[i] - cw[i - 1]).clamp_min(1e-300)
    return x[i - 1] + t * (x[i] - x[i - 1])


def _element_names(name: str, shape: tuple[int, ...]) -> list[str]:
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, idx))}]" for idx in itertools.product(*(range(s) for s in shape))]


@dataclass
class FitResult:
    """The outcome of :func:`varinf.fit`.

    Attributes:
        model, family: the fitted model and variational family (``family()`` is q over unconstrained space).
        elbo_trace: ``(num_steps,)`` per-step bound estimates (nats; the objective's bound).
        window_means: mean bound of each convergence window (nats).
        converged: whether the relative-change criterion was met before ``max_steps``.
        convergence_reason: which criterion fired (or why not).
        num_steps: optimizer steps taken (after step-size adaptation).
        grad_evals: log-joint gradient evaluations in total, adaptation included.
        wall_time: seconds spent fitting (the diagnostics are timed apart, in ``diagnostics_time``).
        lr: the step size used.
        averaged_steps: how many final iterates were averaged (0 = last iterate).
        recoveries: how many times a run of non-finite bounds forced a step back and a smaller step size.
        skipped_steps: steps whose bound was non-finite and that were skipped (no update).
        diagnostics: filled by :mod:`varinf.diagnostics` (PSIS k-hat, log evidence) when run.
        method: the fitting method asked for (``"auto"``, ``"advi"``, ``"bam"``, ``"pathfinder"``).
        family_name: the family the user asked for (``"fullrank"``, ...), whatever wraps it internally.
        route: the stages that ran, e.g. ``("pathfinder", "bam")`` for ``method="auto"``; ``route_reason`` why.
        density_evals: log-density evaluations without gradients (Pathfinder's ELBO estimates), not counted
            in ``grad_evals``.
        report: ``"psis"``: :meth:`summary` reports PSIS-corrected estimates when the diagnostics say k-hat
            allows (``"q"``: always q's own).
        batch_size: data rows per step of a minibatch fit (``None``: every row at every step).
        family_kwargs: the keyword arguments the family was built with (``rank=3``), for :meth:`save`.
        diagnostics_time: seconds :func:`varinf.fit` spent diagnosing the fit (0 when not run).

    The sampling methods (``draws``, ``draws_unconstrained``, ``elbo``, ``summary``) use fresh randomness
    unless given a ``seed``, so draws a user inspects are independent of the diagnostics' own draws.
    """

    model: Any
    family: nn.Module
    objective: Any
    elbo_trace: Tensor
    window_means: list[float]
    converged: bool
    convergence_reason: str
    num_steps: int
    grad_evals: int
    wall_time: float
    lr: float
    averaged_steps: int
    recoveries: int = 0
    skipped_steps: int = 0
    diagnostics: Any = None
    method: str = "advi"
    family_name: str = ""
    route: tuple[str, ...] = ()
    route_reason: str = ""
    density_evals: int = 0
    report: str = "q"
    batch_size: int | None = None
    family_kwargs: dict = field(default_factory=dict)
    diagnostics_time: float = 0.0
    _for_draws: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def family_label(self) -> str:
        """The family's name for people: the one asked for, else the module's class name."""
        return self.family_name or type(self.family).__name__

    # ------------------------------------------------------------------ posterior access
    def posterior(self) -> Distribution:
        """q over the unconstrained space (event shape ``(D,)``)."""
        with torch.no_grad():
            return self.family()

    def model_for_draws(self):
        """The model as seen by code that evaluates thousands of draws (diagnostics, ELBO estimates): the model
        itself, or for data of more than ``varinf.models.subsample.EXACT_ROWS`` rows an estimate of its log
        density from a subsample with a stated error (:mod:`varinf.models.subsample`), built once."""
        if self._for_draws is None:
            with torch.no_grad():
                q = self.family()
                try:
                    anchor = q.mean
                except NotImplementedError:
                    anchor = q.sample((2000,)).mean(0)
            self._for_draws = for_draws(self.model, anchor.detach())
        return self._for_draws

    @torch.no_grad()
    def draws_unconstrained(self, n: int = 1000, seed: int | None = None) -> Tensor:
        """``n`` draws from q ``(n, D)``; ``seed=None`` draws from (and advances) torch's global RNG, a given
        seed uses its own stream and leaves the global RNG untouched."""
        with seeded(seed):
            return self.family().sample((n,))

    @torch.no_grad()
    def draws(self, n: int = 1000, seed: int | None = None) -> dict[str, Tensor]:
        """``n`` draws from q mapped to the constrained space: ``{latent: (n, *shape)}``, followed by the
        model's derived quantities ``{name: (n, ...)}`` (``Model(derived=...)``); fresh unless ``seed``."""
        with seeded(seed):  # one stream for q's draws and any random derived quantities (Stan's generated)
            z = self.model.constrained(self.draws_unconstrained(n))
            return {**z, **self.model.derived_quantities(z)}

    @torch.no_grad()
    def elbo(self, n: int = 1000, seed: int | None = None) -> tuple[float, float]:
        """A fresh Monte Carlo ELBO estimate with ``n`` draws: ``(value, standard error)`` in nats."""
        with seeded(seed):
            q = self.family()
            u = q.sample((n,))
            lw = self.model_for_draws().log_density(u) - q.log_prob(u)
        lw = lw.double()
        return lw.mean().item(), (lw.std() / math.sqrt(n)).item()

    @property
    def psis_corrected(self) -> bool:
        """Whether :meth:`summary` reports PSIS-corrected estimates: the method asks for them (``report="psis"``:
        ``auto``, ``pathfinder``) and k-hat allows (verdict good or ok: the corrected estimates converge; between
        0.5 and the threshold slowly, and the diagnostics warn when they move q's means a lot)."""
        d = self.diagnostics
        return self.report == "psis" and d is not None and d.verdict in ("good", "ok")

    def summary(
        self, n: int = 4000, quantiles: tuple[float, ...] = (0.05, 0.5, 0.95), seed: int | None = None
    ) -> Summary:
        """Table of mean, sd and quantiles of each scalar latent (constrained space): q's own from ``n`` draws, or
        the PSIS-corrected ones from the diagnostics' draws when :attr:`psis_corrected`."""
        corrected = self.psis_corrected
        if corrected:
            z, w = self.diagnostics.draws, self.diagnostics.psis.weights.double()
            with torch.no_grad():
                z = {**z, **self.model.derived_quantities(z)}
        else:
            z, w = self.draws(n, seed), None
        rows = []
        names = getattr(self.model, "element_names", _element_names)
        qs = torch.tensor(quantiles, dtype=torch.float64)
        for key, value in z.items():
            v = value.double().reshape(value.shape[0], -1)
            mean, sd, qv = _moments(v, qs, w)
            for j, name in enumerate(names(key, tuple(value.shape[1:]))):
                rows.append(SummaryRow(name, mean[j].item(), sd[j].item(), tuple(qv[:, j].tolist())))
        elbo, se = self._summary_elbo(n, seed)
        status = "converged" if self.converged else "NOT converged"
        route = f" ({' -> '.join(self.route)})" if self.route else ""
        lr = f", lr={self.lr:g}" if math.isfinite(self.lr) else ""
        header = [
            f"{getattr(self.model, 'name', 'model')}: {self.family_label} family by {self.method}{route}, "
            f"{self.num_steps} steps ({self.grad_evals} gradient evaluations), {self.wall_time:.2f} s"
            + (f" (+ {self.diagnostics_time:.2f} s diagnostics)" if self.diagnostics_time else "")
            + lr,
            f"ELBO {elbo:.3f} ± {se:.3f} nats; {status} ({self.convergence_reason})"
            + (f"; parameters averaged over the last {self.averaged_steps} steps" if self.averaged_steps else ""),
        ]
        if self.route_reason:
            header.append(f"route: {self.route_reason}")
        if self.batch_size is not None:
            rows_total = self.model.num_rows
            header.append(
                f"minibatches of {self.batch_size:,} of {rows_total:,} rows: {self.num_steps * self.batch_size / rows_total:.3g} "
                "epochs (likelihood scaled by N/B, control variate at q's mean)"
            )
        if self.skipped_steps:
            header.append(
                f"{self.skipped_steps} step(s) had a non-finite bound and were skipped; recovered "
                f"{self.recoveries} time(s) by stepping back with a smaller step size"
            )
        if corrected:
            d = self.diagnostics
            header.append(
                f"estimates below are PSIS-corrected ({d.num_draws} draws of q, k-hat {d.khat:.2f}, ESS {d.ess:.0f}); "
                f"q's own means differ by up to {d.psis_shift:.2f} q-sds ({d.psis_shift_at}). res.draws() are q's "
                "draws; res.diagnostics.resample() gives corrected ones"
            )
        footer = list(self.diagnostics.summary_lines()) if self.diagnostics is not None else []
        if hasattr(self._for_draws, "describe"):
            footer.append(self._for_draws.describe())
        return Summary(rows, tuple(quantiles), header, footer)

    def predict(self, data=None, num_draws: int = 1000, seed: int | None = None):
        """Posterior predictive draws for ``data`` (new rows; default: the model's own), see
        :func:`varinf.optim.predict.predict`."""
        from .predict import predict

        return predict(self, data, num_draws, seed)

    def save(self, path) -> Path:
        """Write this fit to ``path`` (``.safetensors``, safetensors + JSON, no pickle); read it back with
        ``varinf.load(path, model)`` (:mod:`varinf.optim.persist`)."""
        from .persist import save_result

        return save_result(self, path)

    def _summary_elbo(self, n: int, seed: int | None) -> tuple[float, float]:
        """The diagnostics' ELBO when there are some (same q, no second pass over the data); else a fresh
        estimate, except for a model spread over processes (the summary may run on one process only: then
        the last window mean of the trace, with the spread of the window's estimates)."""
        d = self.diagnostics
        if d is not None and hasattr(d, "elbo"):
            return float(d.elbo), float(d.elbo_se)
        if getattr(self.model, "distributed", False):
            w = self.elbo_trace[-min(len(self.elbo_trace), 100) :]
            return w.mean().item(), (w.std() / math.sqrt(max(len(w), 1))).item() if len(w) > 1 else math.nan
        return self.elbo(min(n, 2000), seed)

    def __repr__(self) -> str:
        last = self.window_means[-1] if self.window_means else float("nan")
        return (
            f"FitResult(model={getattr(self.model, 'name', '?')}, family={self.family_label}, method={self.method}, "
            f"steps={self.num_steps}, converged={self.converged}, elbo≈{last:.4g}, wall_time={self.wall_time:.2f}s)"
        )


def direct_result(model, family, objective, trace, *, converged: bool, reason: str, num_steps: int,
                  grad_evals: int, t0: float, method: str, family_name: str, window_means=(),
                  **extra) -> FitResult:  # fmt: skip
    """The :class:`FitResult` of a method without a step size or iterate averaging (BaM, Pathfinder, ``auto``'s
    Gaussian routes): ``lr`` NaN, no averaged steps, ``trace`` (ELBO estimates, nats) as float64, the wall time
    since ``t0``; ``extra`` sets the remaining fields (``route``, ``density_evals``, ``report``, ...)."""
    return FitResult(
        model=model,
        family=family,
        objective=objective,
        elbo_trace=torch.tensor(trace, dtype=torch.float64),
        window_means=list(window_means),
        converged=converged,
        convergence_reason=reason,
        num_steps=num_steps,
        grad_evals=grad_evals,
        wall_time=time.perf_counter() - t0,
        lr=math.nan,
        averaged_steps=0,
        method=method,
        family_name=family_name,
        **extra,
    )
