r"""ADVI (Kucukelbir et al. 2017, arXiv:1603.00788): stochastic-gradient ascent on the ELBO (or another bound).

::

    init(family, lr, make_optimizer) -> ADVIState          q's parameters, Adam, the trace, the recovery counters
    step(state, target) -> (state, StepInfo)              one update: the closed-form Gaussian step where it
                                                          applies (gaussian_step.py), else autograd
                                                          (gradient_step.py); non-finite bounds handled here
    run(model, family, objective, options, config, ...)   Laplace start -> step-size trials (lr="auto") -> the
                                                          stopping rule's schedule -> MethodRun

Stopping rules (``ADVIOptions.stop``), thin loops over :func:`step`:

- ``"elbo"`` (default): epochs at a fixed step until the ELBO is stationary (:class:`~..convergence.RelativeChange`),
  then average the iterates and shrink the step; stop when a smaller step no longer moves q's mean/sd by
  ``tol_param`` sds (after RAABBVI, Welandawe et al. 2022). ``tol_rel_obj=None``: a fixed budget of
  ``max_steps`` at a constant step, averaging the final ``average`` fraction.
- ``"parameters"``: q's means and sds stationary relative to their own Monte Carlo noise
  (:class:`~..stationarity.ParameterStationarity`); when only the noise is too large, continue from the average
  with a smaller step. What ``method="auto"`` uses to polish a family started near its optimum.

Non-finite bounds: an isolated one is skipped; three in a row restore the last finite checkpoint, reset Adam and
halve the step; more than ``max_recoveries`` such step-backs raise :class:`~varinf.errors.FitError`.

Shapes: q is over the model's flat unconstrained space ``(D,)``. Cost per step: ``num_particles`` draws,
one batched log-density evaluation and its gradient (``(S, D) -> (S,)``), one Adam update.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ...errors import ConvergenceWarning, FitError, warn
from ...families import family_label, family_option_names
from ...objectives import ELBO
from ...utils import seeded
from ..adam import LeanAdam
from ..averaging import IterateAverage
from ..config import FitConfig, check_fraction, check_int, check_positive
from ..convergence import RelativeChange
from ..gaussian_step import fused_step
from ..gradient_step import StepInfo
from ..gradient_step import step as gradient_step
from ..initialization import build_family, start
from ..minibatch import log_density_for
from ..result import ADVIStats, MethodRun
from ..routing import MethodOptions
from ..stationarity import ParameterStationarity
from ..stepsize import adapt_lr

__all__ = ["ADVIOptions", "ADVIState", "ADVITarget", "Options", "family_options", "init", "run", "step", "update"]

STOPS = ("elbo", "parameters")
STATIONARY_WINDOW = 5  # iterates per batch-means window at least, for the "parameters" rule


@dataclass(frozen=True)
class ADVIOptions(MethodOptions):
    r"""ADVI's settings.

    Attributes:
        max_steps: cap on optimizer steps (step-size trials not included).
        lr: Adam step size, or ``"auto"`` (try 0.3/0.1/0.03/0.01 for 50 steps each, keep the best).
        optimizer: ``f(params, lr) -> torch.optim.Optimizer`` (default: Adam, :class:`~..adam.LeanAdam`).
        tol_rel_obj: relative ELBO change for stationarity; ``None`` runs exactly ``max_steps`` at a
            constant step (averaging the final ``average`` fraction).
        window: steps per convergence window.
        average: fraction of each phase over which parameters are averaged (0 = keep the last iterate).
        decay: factor applied to the step size each time the ELBO (or q, for ``stop="parameters"``) becomes
            stationary.
        max_decays: at most this many step-size reductions.
        tol_param: stop when a smaller step moves q's mean and log-sd by less than this many sds.
        max_recoveries: step-backs allowed after runs of non-finite bounds before :class:`FitError`.
        callback: ``f(step, window_mean_bound)`` after every convergence window.
        batch_size: fit on minibatches of this many data rows (models with data only): shuffled epochs,
            likelihood scaled by N/B, with a control variate that keeps the gradient noise small
            (:mod:`varinf.optim.minibatch`); ``None`` uses every row at every step.
        stop: ``"elbo"`` or ``"parameters"`` (module docstring).
        noise: ``stop="parameters"``: the Monte Carlo noise q's average may keep, in sds (default ``tol_param/2``).
    """

    method: ClassVar[str] = "advi"
    max_steps: int = 10_000
    lr: float | str = "auto"
    optimizer: Callable[[list, float], torch.optim.Optimizer] | None = None
    tol_rel_obj: float | None = 1e-3
    window: int = 100
    average: float = 0.25
    decay: float = 0.3
    max_decays: int = 4
    tol_param: float = 0.05
    max_recoveries: int = 10
    callback: Callable[[int, float], None] | None = None
    batch_size: int | None = None
    stop: str = "elbo"
    noise: float | None = None

    def __post_init__(self):
        check_int("max_steps", self.max_steps, 1)
        check_int("window", self.window, 2)
        check_int("max_decays", self.max_decays, 0)
        check_int("max_recoveries", self.max_recoveries, 0)
        if isinstance(self.lr, str):
            if self.lr != "auto":
                raise ValueError(f"lr must be a positive number or 'auto', got {self.lr!r}")
        else:
            check_positive("lr", self.lr)
        check_positive("tol_rel_obj", self.tol_rel_obj, allow_none=True)
        check_fraction("average", self.average, lo_open=False, hi_open=True)
        check_fraction("decay", self.decay, lo_open=True, hi_open=True)
        check_positive("tol_param", self.tol_param)
        check_positive("noise", self.noise, allow_none=True)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, 1)
        if self.stop not in STOPS:
            raise ValueError(f"stop must be one of {', '.join(STOPS)}, got {self.stop!r}")
        for name in ("optimizer", "callback"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise ValueError(f"{name} must be callable or None, got {getattr(self, name)!r}")


Options = ADVIOptions


def family_options(family: str | None) -> frozenset[str]:
    """ADVI builds the family itself: every option of a family given by name."""
    return family_option_names(family) if family is not None else frozenset()


@dataclass
class ADVIState:
    """One ADVI run's state: q's parameters live in ``family`` (the optimizer updates them in place)."""

    family: nn.Module
    optimizer: Any
    lr: float
    checkpoint: dict[str, Tensor]
    t: int = 0
    trace: list[float] = field(default_factory=list)
    window_means: list[float] = field(default_factory=list)
    window_start: int = 0
    recoveries: int = 0
    skipped: int = 0
    consecutive: int = 0


@dataclass(frozen=True)
class ADVITarget:
    """What every step of one run shares: the log density, the bound, how to build the optimizer, the window
    and recovery settings, and the progress bar and callback."""

    log_p: Callable[[Tensor], Tensor]
    objective: Any
    make_optimizer: Callable
    window: int = 100
    name: str = "model"
    max_recoveries: int = 10
    bar: Any = None
    callback: Callable[[int, float], None] | None = None


def _make_adam(params, lr):
    return LeanAdam(params, lr=lr)


def _snapshot(family: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in family.state_dict().items()}


def init(family: nn.Module, lr: float, make_optimizer: Callable = _make_adam) -> ADVIState:
    """The state at the start of a run: the optimizer at step size ``lr``, a checkpoint of q's parameters."""
    return ADVIState(family, make_optimizer(list(family.parameters()), float(lr)), float(lr), _snapshot(family))


def update(log_p, family: nn.Module, objective, optimizer) -> StepInfo:
    """One optimizer update on the bound: the closed-form Gaussian step where it applies, else autograd."""
    info = fused_step(log_p, family, objective, optimizer)
    return info if info is not None else gradient_step(log_p, family, objective, optimizer)


def step(state: ADVIState, target: ADVITarget) -> tuple[ADVIState, StepInfo]:
    """One step: the update, then the trace (finite bounds) or the non-finite rule (module docstring)."""
    info = update(target.log_p, state.family, target.objective, state.optimizer)
    if not info.finite:
        _non_finite(state, target)
        return state, info
    state.consecutive = 0
    state.trace.append(info.bound.item() if info.bound.dim() == 0 else info.bound.mean().item())
    state.t += 1
    return state, info


def set_lr(state: ADVIState, target: ADVITarget, lr: float) -> None:
    """Change the step size and restart the optimizer's moment estimates."""
    state.lr = float(lr)
    state.optimizer = target.make_optimizer(list(state.family.parameters()), state.lr)


def _non_finite(state: ADVIState, target: ADVITarget) -> None:
    state.skipped += 1
    state.consecutive += 1
    if state.consecutive < 3:
        return
    state.consecutive = 0
    state.recoveries += 1
    if state.recoveries > target.max_recoveries:
        raise FitError(
            f"{target.name}: the bound stayed non-finite after {target.max_recoveries} step-backs (step {state.t}, "
            f"lr now {state.lr:g}). The log joint is probably NaN or -inf somewhere q puts mass; check "
            "supports and data, or try a smaller lr / init closer to the posterior."
        )
    state.family.load_state_dict(state.checkpoint)
    set_lr(state, target, state.lr / 2)


def advance(state: ADVIState, target: ADVITarget, n: int, detector: RelativeChange | None = None,
            averager: IterateAverage | None = None) -> bool:  # fmt: skip
    """Take up to ``n`` finite steps; stop early (returning True) when ``detector`` reports convergence at the
    end of a window."""
    end = state.t + n
    while state.t < end:
        state, info = step(state, target)
        if not info.finite:
            continue
        if averager is not None:
            averager.update()
        if state.t - state.window_start == target.window and _close_window(state, target, detector):
            return True
    return False


def _close_window(state: ADVIState, target: ADVITarget, detector: RelativeChange | None) -> bool:
    w = torch.tensor(state.trace[state.window_start : state.t], dtype=torch.float64)
    state.window_start = state.t
    wm = w.mean().item()
    state.window_means.append(wm)
    if all(bool(torch.isfinite(p).all()) for p in state.family.parameters()):
        state.checkpoint = _snapshot(state.family)
    if target.bar is not None:
        target.bar.update(len(w))
        target.bar.set_postfix(elbo=f"{wm:.4g}", lr=f"{state.lr:.3g}")
    if target.callback is not None:
        target.callback(state.t, wm)
    return detector is not None and detector.update(wm, w.var().item(), len(w))


# ---------------------------------------------------------------------------------------------- schedules
@dataclass(frozen=True)
class Outcome:
    """How a schedule ended: converged, why, and how many final iterates were averaged."""

    converged: bool
    reason: str
    averaged: int = 0


def fixed_budget(state: ADVIState, target: ADVITarget, options: ADVIOptions) -> Outcome:
    """Constant step size for ``max_steps``; iterates averaged over the final ``average`` fraction."""
    n_avg = int(options.average * options.max_steps)
    advance(state, target, options.max_steps - n_avg)
    if n_avg:
        avg = IterateAverage(state.family)
        advance(state, target, n_avg, averager=avg)
        avg.apply()
    return Outcome(False, f"fixed budget of {options.max_steps} steps", n_avg)


def _moments(family: nn.Module) -> tuple[Tensor, Tensor]:
    """Mean and sd of q (exact for Gaussians, from 2000 seeded draws otherwise)."""
    with torch.no_grad():
        q = family()
        try:
            return q.mean.detach().clone(), q.stddev.detach().clone()
        except NotImplementedError:
            with seeded(12345):
                z = q.sample((2000,))
            return z.mean(0), z.std(0)


def decaying(state: ADVIState, target: ADVITarget, options: ADVIOptions) -> Outcome:
    r"""Step-size decay on stationarity (after RAABBVI, Welandawe et al. 2022, arXiv:2203.15945).

    Each epoch runs at a fixed step size until the ELBO stops changing (:class:`RelativeChange`), then averages
    the iterates over a further ``average/(1-average)`` of the epoch's steps: with a constant step, Adam's
    iterates jitter around the optimum by an amount set by the step size, not by the posterior's scale. The run
    stops when an epoch's averaged mean and sd of q moved by less than ``tol_param`` posterior sds from the
    previous epoch's, after ``max_decays`` reductions, or at ``max_steps``."""
    prev, averaged = None, 0
    for epoch in range(options.max_decays + 1):
        stationary, averaged = _epoch(state, target, options, averaged)
        if not stationary:
            return Outcome(False, f"ELBO still changing at step {state.t} (step size {state.lr:.3g})", averaged)
        mean, sd = _moments(state.family)
        if prev is not None:
            shift = ((mean - prev[0]).abs() / sd).max().item()
            spread = (sd.log() - prev[1].log()).abs().max().item()
            if max(shift, spread) < options.tol_param:
                return Outcome(True, f"ELBO stationary and q unchanged by a smaller step (max shift {shift:.3f} sd, "
                               f"log-sd change {spread:.3f}) after {epoch} step-size reduction(s)", averaged)  # fmt: skip
        if epoch == options.max_decays:
            return Outcome(True, f"ELBO stationary after {options.max_decays} step-size reductions", averaged)
        if state.t >= options.max_steps:
            return Outcome(False, f"step budget used while refining the step size (now {state.lr:.3g})", averaged)
        prev = (mean, sd)
        set_lr(state, target, state.lr * options.decay)
    raise AssertionError("unreachable")


def _epoch(state: ADVIState, target: ADVITarget, options: ADVIOptions, averaged: int) -> tuple[bool, int]:
    """One epoch of :func:`decaying`: until the ELBO is stationary, then the averaging phase."""
    max_steps, average = options.max_steps, options.average
    remaining = max_steps - state.t
    reserve = max(target.window, int(average * remaining)) if average > 0 else 0
    t_start = state.t
    stationary = advance(state, target, max(remaining - reserve, 0), detector=RelativeChange(options.tol_rel_obj))
    if average > 0:
        n_avg = max(target.window, round((state.t - t_start) * average / (1 - average)))
        n_avg = min(n_avg, max_steps - state.t)
        avg = IterateAverage(state.family)
        advance(state, target, n_avg, averager=avg)
        avg.apply()
        averaged = n_avg
    return stationary, averaged


def stationary_parameters(state: ADVIState, target: ADVITarget, options: ADVIOptions) -> Outcome:
    """Steps until q's means and sds are stationary relative to their Monte Carlo noise (``stop="parameters"``,
    :class:`ParameterStationarity`); when q has stopped drifting but its average is still too noisy, the
    parameters move to that average and the step shrinks by ``decay``. q is left at the average over the
    stationary window (or over the last half of the run when ``max_steps`` attempts end it)."""
    params = [p for p in state.family.parameters() if p.requires_grad]

    def monitor():
        return ParameterStationarity(tol=options.tol_param, min_window=STATIONARY_WINDOW, noise=options.noise)

    mon = monitor()
    while state.t + state.skipped < options.max_steps:
        state, info = step(state, target)
        if not info.finite:
            continue
        with torch.no_grad():
            q = state.family()
            if mon.update(*params, q.mean, q.stddev):
                break
            if mon.noisy:  # restart from the average with a smaller step
                _copy(params, mon.average())
                set_lr(state, target, state.lr * options.decay)
                mon = monitor()
    if mon.ready:
        with torch.no_grad():
            _copy(params, mon.average())
    attempts = state.t + state.skipped
    reason = mon.reason if mon.stationary else f"{mon.reason or 'no finite step'} after {attempts} steps"
    return Outcome(mon.stationary, reason)


def _copy(params: list[Tensor], values) -> None:
    for p, a in zip(params, values):
        p.copy_(a)


def schedule(state: ADVIState, target: ADVITarget, options: ADVIOptions) -> Outcome:
    """The stopping rule ``options`` asks for, run from ``state``."""
    if options.tol_rel_obj is None:
        return fixed_budget(state, target, options)
    if options.stop == "parameters":
        return stationary_parameters(state, target, options)
    return decaying(state, target, options)


# ---------------------------------------------------------------------------------------------- the method
def num_particles(objective) -> int:
    """Draws (log-density gradient evaluations) per step of ``objective``."""
    return int(getattr(objective, "num_particles", 1))


def _progress(options: ADVIOptions, config: FitConfig):
    """A bar counting steps. Only a fixed budget (``tol_rel_obj=None``) runs exactly ``max_steps``; a converging
    run stops when q settles, so its bar counts steps against no total (the cap is in its label)."""
    enabled = sys.stderr.isatty() if config.progress is None else config.progress
    if not enabled:
        return None
    from tqdm.auto import tqdm

    if options.tol_rel_obj is None:
        return tqdm(total=options.max_steps, desc="varinf fit", unit="step", leave=False)
    return tqdm(total=None, desc=f"varinf fit (until converged, at most {options.max_steps} steps)", unit="step",
                leave=False)  # fmt: skip


@dataclass(frozen=True)
class FamilyFit:
    """ADVI on a family already built: the schedule's outcome, the run's state and its gradient evaluations."""

    outcome: Outcome
    state: ADVIState
    grad_evals: int

    def stats(self) -> ADVIStats:
        s = self.state
        return ADVIStats(s.lr, self.outcome.averaged, s.recoveries, s.skipped, tuple(s.window_means))


def fit_family(log_p, family: nn.Module, objective, options: ADVIOptions, name: str, bar=None) -> FamilyFit:
    """ADVI from ``family``'s current parameters (step-size trials when ``lr="auto"``, then the schedule); the
    core of :func:`run`, and the polish of ``method="auto"``. Gradient evaluations count every attempted step."""
    make_opt = options.optimizer or _make_adam
    grad_evals, per_step = 0, num_particles(objective)
    lr = options.lr
    if lr == "auto":
        lr, n = adapt_lr(log_p, family, objective, make_opt, update)
        grad_evals += n * per_step
    target = ADVITarget(log_p, objective, make_opt, options.window, name, options.max_recoveries, bar,
                        options.callback)  # fmt: skip
    state = init(family, lr, make_opt)
    try:
        outcome = schedule(state, target, options)
    finally:
        if bar is not None:
            bar.update(state.t - bar.n)  # the bar advances per window: count the last, partial one
            bar.close()
    return FamilyFit(outcome, state, grad_evals + (state.t + state.skipped) * per_step)


def run(model, family, objective, options: ADVIOptions, config: FitConfig, family_options: dict) -> MethodRun:
    """Fit ``family`` (a name or module) to ``model``'s posterior by ADVI; see the module docstring."""
    t0 = time.perf_counter()
    s = start(model, config, laplace=isinstance(family, str), batch_size=options.batch_size)
    label = family_label(family)
    fam = build_family(family, s, **family_options)
    objective = objective if objective is not None else ELBO()
    log_p = log_density_for(s.model, options.batch_size, config.seed, s.u0)
    fit = fit_family(log_p, fam, objective, options, s.model.name, _progress(options, config))
    if options.tol_rel_obj is not None and not fit.outcome.converged:
        warn(f"{s.model.name}: not converged after {fit.state.t} steps ({fit.outcome.reason}); increase max_steps",
             ConvergenceWarning)  # fmt: skip
    return MethodRun(
        model=s.model, family=fam, objective=objective,
        elbo_trace=torch.tensor(fit.state.trace, dtype=torch.float64), converged=fit.outcome.converged,
        convergence_reason=fit.outcome.reason, num_steps=fit.state.t, grad_evals=s.evaluations + fit.grad_evals,
        wall_time=time.perf_counter() - t0, method="advi", family_name=label, options=options,
        family_options=dict(family_options), advi=fit.stats(), batch_size=options.batch_size,
    )  # fmt: skip


def resolve_family(family, dim: int, options: dict, objective) -> Any:
    """``"auto"`` means mean-field under ADVI."""
    return "meanfield" if isinstance(family, str) and family.lower() == "auto" else family
