r"""ADVI (Kucukelbir et al. 2017, arXiv:1603.00788): stochastic-gradient ascent on the ELBO (or another bound).

::

    [Laplace start] -> [step-size trials (lr="auto")]
      -> epoch: Adam until the ELBO is stationary -> average the iterates -> shrink the step
      -> ... until a smaller step no longer moves q (or max_decays / max_steps)

With ``tol_rel_obj=None``: a constant step for ``max_steps``, averaging the final ``average`` fraction.
Stationarity: :class:`~varinf.optim.convergence.RelativeChange` on window means of the bound.
Non-finite bounds are handled by :class:`~varinf.optim.loop.StepLoop`.

Shapes: q is over the model's flat unconstrained space ``(D,)``. Cost per step: ``num_particles`` draws,
one batched log-density evaluation and its gradient (``(S, D) -> (S,)``), one Adam update.
"""

from __future__ import annotations

import sys
import time
import warnings

import torch
from torch import Tensor, nn

from ..errors import ConvergenceWarning
from ..families import family_label
from ..models import Model
from ..utils import seeded
from .adam import LeanAdam
from .averaging import IterateAverage
from .config import FitConfig
from .convergence import RelativeChange
from .loop import StepLoop
from .minibatch import log_density_for
from .result import FitResult
from .start import build_family, start
from .stepsize import adapt_lr

__all__ = ["advi"]


def _make_adam(params, lr):
    return LeanAdam(params, lr=lr)


def _progress(config: FitConfig):
    """A bar counting steps. Only a fixed budget (``tol_rel_obj=None``) runs exactly ``max_steps``; a converging
    run stops when q settles, so its bar counts steps against no total (the cap is in its label)."""
    enabled = sys.stderr.isatty() if config.progress is None else config.progress
    if not enabled:
        return None
    from tqdm.auto import tqdm

    if config.tol_rel_obj is None:
        return tqdm(total=config.max_steps, desc="varinf fit", unit="step", leave=False)
    return tqdm(total=None, desc=f"varinf fit (until converged, at most {config.max_steps} steps)", unit="step",
                leave=False)  # fmt: skip


def num_particles(objective) -> int:
    """Draws (log-density gradient evaluations) per step of ``objective``."""
    return int(getattr(objective, "num_particles", 1))


def advi(model: Model, family, objective, config: FitConfig, family_kwargs: dict) -> FitResult:
    """Fit ``family`` (a name or module) to ``model``'s posterior by ADVI; see the module docstring."""
    t0 = time.perf_counter()
    s = start(model, config, laplace=isinstance(family, str))
    label = family_label(family)
    family = build_family(family, s, **family_kwargs)
    model, log_p = s.model, log_density_for(s.model, config, s.u0)
    make_opt = config.optimizer or _make_adam
    grad_evals, per_step = s.evaluations, num_particles(objective)
    lr = config.lr
    if lr == "auto":
        lr, n = adapt_lr(log_p, family, objective, make_opt)
        grad_evals += n * per_step
    bar = _progress(config)
    loop = StepLoop(log_p, family, objective, make_opt, float(lr), config.window, model.name, config.max_recoveries,
                    bar, config.callback)  # fmt: skip
    try:
        if config.tol_rel_obj is None:
            converged, reason, averaged = _fixed_budget(loop, config.max_steps, config.average)
        else:
            converged, reason, averaged = _decaying(loop, config)
    finally:
        if bar is not None:
            bar.update(loop.t - bar.n)  # the bar advances per window: count the last, partial one
            bar.close()
    if config.tol_rel_obj is not None and not converged:
        warnings.warn(f"{model.name}: not converged after {loop.t} steps ({reason}); increase max_steps",
                      ConvergenceWarning, stacklevel=4)  # fmt: skip
    grad_evals += loop.t * per_step
    return FitResult(
        model=model,
        family=family,
        objective=objective,
        elbo_trace=torch.tensor(loop.trace, dtype=torch.float64),
        window_means=loop.window_means,
        converged=converged,
        convergence_reason=reason,
        num_steps=loop.t,
        grad_evals=grad_evals,
        wall_time=time.perf_counter() - t0,
        lr=loop.lr,
        averaged_steps=averaged,
        recoveries=loop.recoveries,
        skipped_steps=loop.skipped,
        method="advi",
        family_name=label,
        batch_size=config.batch_size,
        family_kwargs=dict(family_kwargs),
    )


def _fixed_budget(loop: StepLoop, max_steps: int, average: float) -> tuple[bool, str, int]:
    """Constant step size for ``max_steps``; iterates averaged over the final ``average`` fraction."""
    n_avg = int(average * max_steps)
    loop.run(max_steps - n_avg)
    if n_avg:
        avg = IterateAverage(loop.family)
        loop.run(n_avg, averager=avg)
        avg.apply()
    return False, f"fixed budget of {max_steps} steps", n_avg


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


def _decaying(loop: StepLoop, config: FitConfig) -> tuple[bool, str, int]:
    r"""Step-size decay on stationarity (after RAABBVI, Welandawe et al. 2022, arXiv:2203.15945).

    Each epoch runs at a fixed step size until the ELBO stops changing (:class:`RelativeChange`), then
    averages the iterates over a further ``average/(1-average)`` of the epoch's steps. With a constant
    step, Adam's iterates jitter around the optimum with an amplitude set by the step size, not by the
    posterior's scale: averaging removes most of it, and shrinking the step by ``decay`` removes the rest.
    The run stops when an epoch's averaged mean and sd of q moved by less than ``tol_param`` posterior
    sds from the previous epoch's (shrinking the step no longer changes the answer), after
    ``max_decays`` reductions, or at ``max_steps``.
    """
    max_steps, average, tol_rel_obj = config.max_steps, config.average, config.tol_rel_obj
    decay, max_decays, tol_param = config.decay, config.max_decays, config.tol_param
    prev, averaged = None, 0
    for epoch in range(max_decays + 1):
        remaining = max_steps - loop.t
        reserve = max(loop.window, int(average * remaining)) if average > 0 else 0
        t_start = loop.t
        stationary = loop.run(max(remaining - reserve, 0), detector=RelativeChange(tol_rel_obj))
        if average > 0:
            n_avg = max(loop.window, round((loop.t - t_start) * average / (1 - average)))
            n_avg = min(n_avg, max_steps - loop.t)
            avg = IterateAverage(loop.family)
            loop.run(n_avg, averager=avg)
            avg.apply()
            averaged = n_avg
        if not stationary:
            return False, f"ELBO still changing at step {loop.t} (step size {loop.lr:.3g})", averaged
        mean, sd = _moments(loop.family)
        if prev is not None:
            shift = ((mean - prev[0]).abs() / sd).max().item()
            spread = (sd.log() - prev[1].log()).abs().max().item()
            if max(shift, spread) < tol_param:
                return (
                    True,
                    (
                        f"ELBO stationary and q unchanged by a smaller step (max shift {shift:.3f} sd, "
                        f"log-sd change {spread:.3f}) after {epoch} step-size reduction(s)"
                    ),
                    averaged,
                )
        if epoch == max_decays:
            return True, f"ELBO stationary after {max_decays} step-size reductions", averaged
        if loop.t >= max_steps:
            return False, f"step budget used while refining the step size (now {loop.lr:.3g})", averaged
        prev = (mean, sd)
        loop.set_lr(loop.lr * decay)
    raise AssertionError("unreachable")
