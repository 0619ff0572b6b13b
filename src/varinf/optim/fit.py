r"""``fit``: maximize a variational bound for a model — a thin loop over :func:`~varinf.optim.step.step`.

Phases::

    [step-size trials (lr="auto")]
      -> epoch: optimize until the ELBO is stationary -> average the iterates -> shrink the step
      -> ... until a smaller step no longer moves q (or max_decays / max_steps)

With ``tol_rel_obj=None``: a constant step for ``max_steps``, averaging the final ``average`` fraction.
Stationarity: :class:`~varinf.optim.convergence.RelativeChange` on window means of the bound.
Non-finite bounds are handled by :class:`~varinf.optim.loop.StepLoop`.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from ..families import AbstractFamily, make_family
from ..models import Model
from ..objectives import ELBO
from ..utils import num_threads
from .adam import LeanAdam
from .averaging import IterateAverage
from .convergence import RelativeChange
from .errors import ConvergenceWarning
from .laplace import laplace_init, preconditioned_family
from .loop import StepLoop
from .result import FitResult
from .stepsize import adapt_lr

__all__ = ["fit", "initial_point"]


def initial_point(model: Model, init, generator: torch.Generator | None = None) -> Tensor:
    """The starting point in unconstrained space: ``"zeros"``, ``"uniform"`` (Stan: U(-2, 2)),
    a dict of constrained values, or a flat unconstrained tensor of size ``model.dim``."""
    if isinstance(init, str):
        if init == "zeros":
            return torch.zeros(model.dim)
        if init == "uniform":
            return torch.rand(model.dim, generator=generator) * 4 - 2
        raise ValueError(f"unknown init {init!r}; use 'zeros', 'uniform', a dict of latent values or a tensor")
    if isinstance(init, Mapping):
        return model.unconstrain(init).reshape(model.dim)
    u = torch.as_tensor(init, dtype=torch.get_default_dtype())
    if u.shape != (model.dim,):
        raise ValueError(f"init tensor must have shape ({model.dim},), got {tuple(u.shape)}")
    return u


@contextlib.contextmanager
def _no_validation():
    """Turn off torch.distributions argument/support validation while optimizing (restored afterwards).

    ``model.check()`` has already evaluated the log joint once with validation on; per step, validation of
    every Distribution built inside a user's log joint costs more ops than the arithmetic (eight schools:
    about 340 tensor ops per step with it)."""
    old = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        torch.distributions.Distribution.set_default_validate_args(old)


@contextlib.contextmanager
def _threads(model: Model, threads):
    if threads == "auto":
        threads = 1 if sum(b.numel() for b in model.buffers()) < 2_000_000 else None
    with num_threads(threads):
        yield


def _make_adam(params, lr):
    return LeanAdam(params, lr=lr)


def _progress(total: int, enabled: bool | None):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="varinf fit", unit="step", leave=False)


def fit(
    model: Model,
    family: str | AbstractFamily = "meanfield",
    objective=None,
    *,
    max_steps: int = 10_000,
    lr: float | str = "auto",
    optimizer: Callable[[list, float], torch.optim.Optimizer] | None = None,
    tol_rel_obj: float | None = 1e-3,
    window: int = 100,
    average: float = 0.25,
    decay: float = 0.3,
    max_decays: int = 4,
    tol_param: float = 0.05,
    init="auto",
    seed: int | None = 0,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    progress: bool | None = None,
    threads: int | str | None = "auto",
    check: bool = True,
    max_recoveries: int = 10,
    callback: Callable[[int, float], None] | None = None,
    **family_kwargs,
) -> FitResult:
    r"""Fit a variational approximation :math:`q` to the posterior of ``model``.

    Args:
        model: a :class:`~varinf.models.Model`.
        family: ``"meanfield"``, ``"fullrank"``, ``"lowrank"``, ``"flow"`` or a family module over
            ``model.dim`` unconstrained dimensions. Extra keyword arguments go to the family.
        objective: :class:`~varinf.objectives.ELBO` (default, one reparameterized particle), ``IWAE``, ``Renyi``.
        max_steps: cap on optimizer steps (adaptation not included).
        lr: Adam step size, or ``"auto"`` to try 0.3/0.1/0.03/0.01 for 50 steps each and keep the best.
        optimizer: ``f(params, lr) -> torch.optim.Optimizer`` (default Adam).
        tol_rel_obj: relative ELBO change for stationarity; ``None`` runs exactly ``max_steps`` at a constant
            step size (averaging the final ``average`` fraction).
        window: steps per convergence window.
        average: fraction of each phase over which parameters are averaged (0 = keep the last iterate).
        decay: factor applied to the step size each time the ELBO becomes stationary.
        max_decays: at most this many step-size reductions.
        tol_param: stop when a smaller step moves q's (averaged) mean and log-sd by less than this many sds.
        init: ``"auto"`` (default): the posterior mode and its curvature when L-BFGS finds a proper mode
            (the highest of the modes reached from zeros and three U(-2, 2) starts; see
            :mod:`~varinf.optim.laplace`), else zeros; ``"laplace"`` (the same, warning on fallback);
            or a starting point for :func:`initial_point` (``"zeros"``, ``"uniform"``, dict, tensor).
        seed: seeds all randomness inside the fit (the global RNG state is left untouched).
        dtype, device: move the model and family there (default: the model's own).
        progress: show a progress bar (default: only when stderr is a terminal).
        threads: torch intra-op threads during the fit (restored afterwards). ``"auto"``: one thread for
            models whose data hold fewer than 2 million numbers — their ops are too small to split, and on a
            busy machine OpenMP's thread hand-offs cost more than the arithmetic (measured here: 16 ms/step
            with 2 threads vs under 1 ms/step with one, on a loaded 2-core box); ``None`` leaves torch's setting.
        check: evaluate the model once first and raise a clear error if it is broken.

    Returns:
        :class:`~varinf.optim.result.FitResult`.

    Example:
        >>> from varinf.models import NormalNormal
        >>> import torch
        >>> res = fit(NormalNormal(torch.tensor([1.0, 2.0])), max_steps=2000, progress=False)
        >>> round(res.draws(4000)["mu"].mean().item(), 1)
        1.5
    """
    if not 0 <= average < 1:
        raise ValueError(f"average must be in [0, 1), got {average}")
    if objective is None:
        objective = ELBO()
    rng = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
    with rng, _threads(model, threads):
        if seed is not None:
            torch.manual_seed(seed)
        return _fit(
            model,
            family,
            objective,
            max_steps,
            lr,
            optimizer or _make_adam,
            tol_rel_obj,
            (decay, max_decays, tol_param),
            window,
            average,
            init,
            dtype,
            device,
            progress,
            check,
            max_recoveries,
            callback,
            family_kwargs,
        )


def _particles(objective) -> int:
    return int(getattr(objective, "num_particles", None) or getattr(objective, "k", 1))


def _fit(
    model,
    family,
    objective,
    max_steps,
    lr,
    make_opt,
    tol_rel_obj,
    schedule,
    window,
    average,
    init,
    dtype,
    device,
    progress,
    check,
    max_recoveries,
    callback,
    family_kwargs,
) -> FitResult:
    t0 = time.perf_counter()
    decay, max_decays, tol_param = schedule
    if dtype is not None or device is not None:
        model = model.to(device=device, dtype=dtype)
    ref = next(model.buffers(), None)
    dtype = dtype or (ref.dtype if ref is not None and ref.is_floating_point() else torch.get_default_dtype())
    device = device or (ref.device if ref is not None else torch.device("cpu"))
    start = "zeros" if isinstance(init, str) and init in ("laplace", "auto") else init
    u0 = initial_point(model, start).to(device=device, dtype=dtype)
    if check:
        model.check(u0)
    laplace = None
    if isinstance(init, str) and init in ("laplace", "auto") and isinstance(family, str):
        # zeros plus 3 of Stan's U(-2, 2) starts (a fixed generator keeps fits reproducible): the highest mode wins
        laplace = laplace_init(model.log_density, u0, extra_starts=3, generator=torch.Generator().manual_seed(0))
        if laplace.ok:
            u0 = laplace.mode
        elif init == "laplace":
            warnings.warn(f"{model.name}: Laplace initialization failed ({laplace.reason}); starting from zeros",
                          stacklevel=3)  # fmt: skip
    if isinstance(family, str) and laplace is not None and laplace.ok:
        family = preconditioned_family(family, model.dim, laplace, **family_kwargs)
    elif isinstance(family, str):
        family = make_family(family, model.dim, loc=u0, **family_kwargs)
    elif family_kwargs:
        raise TypeError(f"unexpected keyword arguments {sorted(family_kwargs)} (a family module was given)")
    if getattr(family, "dim", model.dim) != model.dim:
        raise ValueError(f"family has dim={family.dim} but the model has {model.dim} unconstrained dimensions")
    family = family.to(device=device, dtype=dtype)
    log_p = model.log_density
    grad_evals, per_step = (laplace.evaluations if laplace is not None else 0), _particles(objective)

    with _no_validation():
        if lr == "auto":
            lr, n = adapt_lr(log_p, family, objective, make_opt)
            grad_evals += n * per_step
        bar = _progress(max_steps, progress)
        loop = StepLoop(
            log_p, family, objective, make_opt, float(lr), window, model.name, max_recoveries, bar, callback
        )
        try:
            if tol_rel_obj is None:
                converged, reason, averaged = _fixed_budget(loop, max_steps, average)
            else:
                converged, reason, averaged = _decaying(
                    loop, max_steps, average, tol_rel_obj, decay, max_decays, tol_param
                )
        finally:
            if bar is not None:
                bar.close()
        if tol_rel_obj is not None and not converged:
            warnings.warn(
                f"{model.name}: not converged after {loop.t} steps ({reason}); increase max_steps", ConvergenceWarning,
                stacklevel=3,
            )  # fmt: skip
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
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(12345)
                z = q.sample((2000,))
            return z.mean(0), z.std(0)


def _decaying(loop: StepLoop, max_steps, average, tol_rel_obj, decay, max_decays, tol_param) -> tuple[bool, str, int]:
    r"""Step-size decay on stationarity (after RAABBVI, Welandawe et al. 2022, arXiv:2203.15945).

    Each epoch runs at a fixed step size until the ELBO stops changing (:class:`RelativeChange`), then
    averages the iterates over a further ``average/(1-average)`` of the epoch's steps. With a constant
    step, Adam's iterates jitter around the optimum with an amplitude set by the step size, not by the
    posterior's scale: averaging removes most of it, and shrinking the step by ``decay`` removes the rest.
    The run stops when an epoch's averaged mean and sd of q moved by less than ``tol_param`` posterior
    sds from the previous epoch's (shrinking the step no longer changes the answer), after
    ``max_decays`` reductions, or at ``max_steps``.
    """
    prev, averaged = None, 0
    for epoch in range(max_decays + 1):
        remaining = max_steps - loop.t
        reserve = max(loop.window, int(average * remaining)) if average > 0 else 0
        start = loop.t
        stationary = loop.run(max(remaining - reserve, 0), detector=RelativeChange(tol_rel_obj))
        if average > 0:
            n_avg = max(loop.window, round((loop.t - start) * average / (1 - average)))
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
