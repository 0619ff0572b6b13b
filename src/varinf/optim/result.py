r"""What a fit returns: a method's :class:`MethodRun`, and the :class:`FitResult` the user gets, built once by
:func:`build_result` (the run plus its diagnostics).

::

    methods/<method>.run(...) -> MethodRun        q, trace, counts, convergence, route (frozen)
    varinf.fit: diagnose(run) -> Diagnostics      (varinf.diagnostics; optional)
    build_result(run, diagnostics) -> FitResult   the one constructor of a FitResult (fit, optimize, load)

A :class:`FitResult` is frozen; its summary table is formatted by :mod:`.summary`, its moments by
:mod:`varinf.utils.weighted`. Draws agree with the summary: when the summary reports PSIS-corrected estimates
(:attr:`FitResult.psis_corrected`), :meth:`FitResult.draws` resamples the diagnostics' draws by their smoothed
weights; ``corrected=False`` gives q's own.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from ..errors import DiagnosticWarning, warn
from ..families import family_label
from ..models import Model
from ..models.subsample import for_draws, is_estimated
from ..objectives import ELBO, IWAE, Renyi
from ..utils import seeded
from .persist import save_result
from .prediction import Predictions, predict
from .routing import MethodOptions
from .summary import Summary, summarize

if TYPE_CHECKING:  # (diagnostics sit above optim: the type only, no import at run time)
    from ..diagnostics.diagnosis import Diagnostics

__all__ = ["ADVIStats", "FitResult", "MethodRun", "build_result"]


@dataclass(frozen=True)
class ADVIStats:
    """What only a stochastic-gradient run has: the final step size, how many final iterates were averaged, the
    step-backs after runs of non-finite bounds and the steps skipped, and each convergence window's mean bound."""

    lr: float = math.nan
    averaged_steps: int = 0
    recoveries: int = 0
    skipped_steps: int = 0
    window_means: tuple[float, ...] = ()


@dataclass(frozen=True)
class MethodRun:
    """What one fitting method produced (before any diagnostics).

    Attributes:
        model, family: the fitted model (moved to the fit's dtype/device) and variational family (``family()``
            is q over unconstrained space).
        objective: the bound ADVI optimized (None for methods without one).
        elbo_trace: ``(num_steps,)`` float64 per-iteration bound estimates (nats).
        converged, convergence_reason: whether the method's stopping rule was met, and which (or why not).
        num_steps: iterations (optimizer steps, BaM iterations, L-BFGS iterations).
        grad_evals: log-density gradient evaluations in total; ``density_evals``: evaluations without gradients
            (Pathfinder's ELBO draws), not counted in ``grad_evals``.
        wall_time: seconds spent fitting.
        method: the method asked for; ``family_name``: the family asked for (``"fullrank"``, ...).
        route, route_reason: the stages that ran (``("pathfinder", "bam")``) and why.
        report: ``"psis"``: the summary reports PSIS-corrected estimates when k-hat allows; ``"q"``: q's own.
        options: the method's options (``ADVIOptions``, ``BaMOptions``, ...); ``family_options``: the family's
            keyword options (``rank=3``).
        advi: :class:`ADVIStats` for runs that ended in stochastic-gradient steps, else None.
        batch_size: data rows per step of a minibatch fit (``None``: every row at every step).
    """

    model: Model
    family: nn.Module
    objective: ELBO | IWAE | Renyi | None
    elbo_trace: Tensor
    converged: bool
    convergence_reason: str
    num_steps: int
    grad_evals: int
    wall_time: float
    method: str
    family_name: str
    density_evals: int = 0
    route: tuple[str, ...] = ()
    route_reason: str = ""
    report: str = "q"
    options: MethodOptions | None = None
    family_options: Mapping[str, Any] = field(default_factory=dict)
    advi: ADVIStats | None = None
    batch_size: int | None = None

    @property
    def family_label(self) -> str:
        """The family's name for people: the one asked for, else the module's class name."""
        return self.family_name or family_label(self.family)

    @functools.cached_property
    def draws_model(self):
        """The model as code that evaluates thousands of draws sees it (diagnostics, ELBO estimates): the model
        itself, or above ``varinf.models.subsample.EXACT_ROWS`` data rows an estimate of its log density from a
        subsample with a stated error (:mod:`varinf.models.subsample`), built once, around q's mean."""
        if not is_estimated(self.model):
            return self.model
        with torch.no_grad():
            q = self.family()
            try:
                anchor = q.mean
            except NotImplementedError:
                anchor = q.sample((2000,)).mean(0)
        return for_draws(self.model, anchor.detach())


def build_result(run: MethodRun, diagnostics: Diagnostics | None = None, diagnostics_time: float = 0.0) -> FitResult:
    """The :class:`FitResult` of ``run`` with its ``diagnostics`` (the one place a FitResult is constructed);
    a ``draws_model`` the run already built is kept."""
    values = {f.name: getattr(run, f.name) for f in dataclasses.fields(MethodRun)}
    result = FitResult(**values, diagnostics=diagnostics, diagnostics_time=diagnostics_time)
    if "draws_model" in run.__dict__:  # the cached property's value: a subsample estimate costs a full pass
        result.__dict__["draws_model"] = run.__dict__["draws_model"]
    return result


@dataclass(frozen=True)
class FitResult(MethodRun):
    """The outcome of :func:`varinf.fit`: a :class:`MethodRun` with its diagnostics.

    Beyond :class:`MethodRun`'s attributes:

    Attributes:
        diagnostics: PSIS k-hat, log evidence and warnings (:class:`~varinf.diagnostics.Diagnostics`), or None
            when the fit ran without them (``diagnose=False``).
        diagnostics_time: seconds :func:`varinf.fit` spent diagnosing the fit (``wall_time`` is the fit alone).

    The sampling methods (``draws``, ``draws_unconstrained``, ``elbo``, ``summary``) use fresh randomness
    unless given a ``seed``.
    """

    diagnostics: Diagnostics | None = None
    diagnostics_time: float = 0.0

    # ------------------------------------------------------------------ ADVI's own numbers
    @property
    def lr(self) -> float:
        """The final step size of a stochastic-gradient run (NaN for methods without one)."""
        return self.advi.lr if self.advi is not None else math.nan

    @property
    def averaged_steps(self) -> int:
        return self.advi.averaged_steps if self.advi is not None else 0

    @property
    def recoveries(self) -> int:
        return self.advi.recoveries if self.advi is not None else 0

    @property
    def skipped_steps(self) -> int:
        return self.advi.skipped_steps if self.advi is not None else 0

    @property
    def window_means(self) -> list[float]:
        return list(self.advi.window_means) if self.advi is not None else []

    # ------------------------------------------------------------------ posterior access
    def posterior(self) -> Distribution:
        """q over the unconstrained space (event shape ``(D,)``)."""
        with torch.no_grad():
            return self.family()

    @property
    def psis_corrected(self) -> bool:
        """Whether :meth:`summary` reports PSIS-corrected estimates, and :meth:`draws` resamples by default: the
        method asks for them (``report="psis"``: ``auto``, ``pathfinder``) and k-hat allows (verdict good or ok:
        the corrected estimates converge; between 0.5 and the threshold slowly, and the diagnostics warn when
        they move q's means a lot)."""
        d = self.diagnostics
        return self.report == "psis" and d is not None and d.reliable

    def _corrected(self, corrected: bool | None) -> bool:
        if corrected is None:
            return self.psis_corrected
        d = self.diagnostics
        if corrected and (d is None or not d.reliable):
            why = "the fit has no diagnostics" if d is None else f"k-hat {d.khat:.2f} is above {d.psis.threshold:.2f}"
            raise ValueError(f"no trustworthy PSIS correction: {why}; draw q's own with corrected=False")
        if not corrected and self.psis_corrected and d.q_draws_suspect:
            warn(
                f"{getattr(self.model, 'name', 'model')}: q's own draws: PSIS moves q's mean of {d.psis_shift_at} by "
                f"{d.psis_shift:.2f} ± {d.shift_noise:.2f} posterior sds; the summary's estimates are PSIS-corrected "
                "(res.draws() resamples)", DiagnosticWarning)  # fmt: skip
        return bool(corrected)

    @torch.no_grad()
    def draws_unconstrained(self, n: int = 1000, seed: int | None = None, corrected: bool | None = None) -> Tensor:
        """``n`` draws ``(n, D)`` in unconstrained space: q's own, or with ``corrected`` (default: when the summary
        is PSIS-corrected) the diagnostics' draws resampled with replacement by their smoothed weights. Fresh
        randomness unless ``seed`` (a given seed leaves torch's global RNG untouched)."""
        with seeded(seed):
            return self._unconstrained(n, self._corrected(corrected))

    def _unconstrained(self, n: int, corrected: bool) -> Tensor:
        if corrected:
            d = self.diagnostics
            return d.unconstrained[d.resample_index(n).to(d.unconstrained.device)]
        return self.family().sample((n,))

    @torch.no_grad()
    def draws(self, n: int = 1000, seed: int | None = None, corrected: bool | None = None) -> dict[str, Tensor]:
        """``n`` draws mapped to the constrained space: ``{latent: (n, *shape)}``, followed by the model's derived
        quantities ``{name: (n, ...)}`` (``Model(derived=...)``). They agree with :meth:`summary`: PSIS-resampled
        when it reports PSIS-corrected estimates (sampling-importance-resampling of the diagnostics' draws, so
        repeats occur; about ESS distinct draws), q's own otherwise or with ``corrected=False``. Fresh unless
        ``seed`` (one stream for the draws and any random derived quantities, Stan's generated ones)."""
        corrected = self._corrected(corrected)
        with seeded(seed):
            z = self.model.constrained(self._unconstrained(n, corrected))
            return {**z, **self.model.derived_quantities(z)}

    @torch.no_grad()
    def elbo(self, n: int = 1000, seed: int | None = None) -> tuple[float, float]:
        """A fresh Monte Carlo ELBO estimate with ``n`` draws: ``(value, standard error)`` in nats."""
        with seeded(seed):
            q = self.family()
            u = q.sample((n,))
            lw = self.draws_model.log_density(u) - q.log_prob(u)
        lw = lw.double()
        return lw.mean().item(), (lw.std() / math.sqrt(n)).item()

    def summary(self, n: int = 4000, quantiles: tuple[float, ...] = (0.05, 0.5, 0.95), seed: int | None = None
                ) -> Summary:  # fmt: skip
        """Table of mean, sd and quantiles of each scalar latent (constrained space), with the fit's facts above
        and the diagnostics below: q's own from ``n`` draws, or PSIS-corrected (:attr:`psis_corrected`)."""
        return summarize(self, n, quantiles, seed)

    def predict(self, data=None, num_draws: int = 1000, seed: int | None = None) -> Predictions:
        """Posterior predictive draws for ``data`` (new rows; default: the model's own), see
        :func:`varinf.optim.prediction.predict`."""
        return predict(self, data, num_draws, seed)

    def save(self, path) -> Path:
        """Write this fit to ``path`` (``.safetensors``, safetensors + JSON, no pickle); read it back with
        ``varinf.load(path, model)`` (:mod:`varinf.optim.persist`)."""
        return save_result(self, path)

    def __repr__(self) -> str:
        last = self.elbo_trace[-1].item() if len(self.elbo_trace) else float("nan")
        return (
            f"FitResult(model={getattr(self.model, 'name', '?')}, family={self.family_label}, method={self.method}, "
            f"steps={self.num_steps}, converged={self.converged}, elbo≈{last:.4g}, wall_time={self.wall_time:.2f}s)"
        )
