r"""``fit``: maximize a variational bound for a model — a thin loop over :func:`~varinf.optim.step.step`.

Phases::

    [step-size trials (lr="auto")] -> optimize until converged or (1-average)·max_steps
                                   -> average iterates for a further fraction `average` of the run

Convergence: :class:`~varinf.optim.convergence.RelativeChange` on window means of the bound.
Non-finite bounds: an isolated one is skipped (no update); three in a row send the parameters back to
the last finite checkpoint, reset Adam's state and halve the step size; after ``max_recoveries`` such
step-backs a :class:`FitError` names the problem.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from ..families import AbstractFamily, make_family
from ..models import Model
from ..objectives import ELBO
from .adam import LeanAdam
from .averaging import IterateAverage
from .convergence import RelativeChange
from .errors import ConvergenceWarning, FitError
from .result import FitResult
from .step import step
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
    init="zeros",
    seed: int | None = 0,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    progress: bool | None = None,
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
        tol_rel_obj: relative ELBO change for convergence; ``None`` runs exactly ``max_steps``.
        window: steps per convergence window.
        average: fraction of the run over which parameters are averaged (0 = keep the last iterate).
        init: starting point (see :func:`initial_point`).
        seed: seeds all randomness inside the fit (the global RNG state is left untouched).
        dtype, device: move the model and family there (default: the model's own).
        progress: show a progress bar (default: only when stderr is a terminal).
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
    with rng:
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
    if dtype is not None or device is not None:
        model = model.to(device=device, dtype=dtype)
    ref = next(model.buffers(), None)
    dtype = dtype or (ref.dtype if ref is not None and ref.is_floating_point() else torch.get_default_dtype())
    device = device or (ref.device if ref is not None else torch.device("cpu"))
    u0 = initial_point(model, init).to(device=device, dtype=dtype)
    if check:
        model.check(u0)
    if isinstance(family, str):
        family = make_family(family, model.dim, loc=u0, **family_kwargs)
    elif family_kwargs:
        raise TypeError(f"unexpected keyword arguments {sorted(family_kwargs)} (a family module was given)")
    if getattr(family, "dim", model.dim) != model.dim:
        raise ValueError(f"family has dim={family.dim} but the model has {model.dim} unconstrained dimensions")
    family = family.to(device=device, dtype=dtype)
    log_p = model.log_density
    grad_evals, per_step = 0, _particles(objective)

    if lr == "auto":
        lr, n = adapt_lr(log_p, family, objective, make_opt)
        grad_evals += n * per_step
    lr = float(lr)
    opt = make_opt(list(family.parameters()), lr)

    detector = RelativeChange(tol_rel_obj) if tol_rel_obj is not None else None
    if detector is not None:
        detector.buffer = max(2, int(0.1 * max_steps / window))
    phase1_cap = max_steps - int(average * max_steps)
    trace: list[float] = []
    checkpoint = {k: v.detach().clone() for k, v in family.state_dict().items()}
    recoveries, skipped, consecutive, converged, reason, averager = 0, 0, 0, False, "", None
    bar = _progress(max_steps, progress)
    t, end = 0, phase1_cap
    window_start, window_means = 0, []
    try:
        while t < end:
            info = step(log_p, family, objective, opt)
            if not info.finite:
                # An isolated non-finite draw is skipped; a run of them means the parameters went somewhere
                # bad: step back to the last finite checkpoint, reset Adam and halve the step size.
                skipped += 1
                consecutive += 1
                if consecutive < 3:
                    continue
                consecutive = 0
                recoveries += 1
                if recoveries > max_recoveries:
                    raise FitError(
                        f"{model.name}: the bound stayed non-finite after {max_recoveries} step-backs (step {t}, "
                        f"lr now {lr:g}). The log joint is probably NaN or -inf somewhere q puts mass; check "
                        "supports and data, or try a smaller lr / init closer to the posterior."
                    )
                family.load_state_dict(checkpoint)
                lr /= 2
                opt = make_opt(list(family.parameters()), lr)
                continue
            consecutive = 0
            b = info.bound.item() if info.bound.dim() == 0 else info.bound.mean().item()
            trace.append(b)
            t += 1
            if averager is not None:
                averager.update()
            if t % window == 0:
                w = torch.tensor(trace[window_start:t], dtype=torch.float64)
                window_start = t
                wm = w.mean().item()
                window_means.append(wm)
                if all(torch.isfinite(p).all() for p in family.parameters()):
                    checkpoint = {k: v.detach().clone() for k, v in family.state_dict().items()}
                if bar is not None:
                    bar.update(window)
                    bar.set_postfix(elbo=f"{wm:.4g}", lr=f"{lr:g}")
                if callback is not None:
                    callback(t, wm)
                if averager is None and detector is not None and detector.update(wm, w.var().item(), window):
                    converged, reason = True, detector.reason
                    end = t  # leave phase 1 now
            if t == end and averager is None and average > 0:
                # enter the averaging phase: `average` of the whole run
                extra = max(window, round(t * average / (1 - average)))
                end = min(max_steps, t + extra)
                averager = IterateAverage(family)
    finally:
        if bar is not None:
            bar.close()
    if averager is not None:
        averager.apply()
    if detector is None:
        reason = f"fixed budget of {max_steps} steps"
    elif not converged:
        reason = f"relative ELBO change still above {tol_rel_obj:g} after {t} steps"
        warnings.warn(
            f"{model.name}: not converged after {t} steps ({reason}); increase max_steps or loosen tol_rel_obj",
            ConvergenceWarning,
            stacklevel=3,
        )
    grad_evals += t * per_step
    return FitResult(
        model=model,
        family=family,
        objective=objective,
        elbo_trace=torch.tensor(trace, dtype=torch.float64),
        window_means=window_means,
        converged=converged,
        convergence_reason=reason,
        num_steps=t,
        grad_evals=grad_evals,
        wall_time=time.perf_counter() - t0,
        lr=lr,
        averaged_steps=(averager.count - 1) if averager is not None else 0,
        recoveries=recoveries,
        skipped_steps=skipped,
    )
