r"""Batch-and-Match (Cai, Modi, Pillaud-Vivien, Margossian, Gower, Blei & Saul, ICML 2024, arXiv:2402.14758):
Gaussian VI by closed-form proximal updates of a score-based divergence.

Each iteration draws a batch :math:`z_b \sim q_t = N(\mu_t, \Sigma_t)`, evaluates the scores
:math:`g_b = \nabla \log p(z_b)` in one batched call, and solves (in closed form) the proximal problem
"match the batch's scores, stay close to :math:`q_t` in KL" with step :math:`\lambda_t`:

.. math::
    U = \lambda\Gamma + \tfrac{\lambda}{1+\lambda}\bar g\bar g^\top,\quad
    V = \Sigma_t + \lambda C + \tfrac{\lambda}{1+\lambda}(\mu_t - \bar z)(\mu_t - \bar z)^\top,\quad
    \Sigma_{t+1} = 2V\big(I + (I + 4UV)^{1/2}\big)^{-1},\quad
    \mu_{t+1} = \tfrac{1}{1+\lambda}\mu_t + \tfrac{\lambda}{1+\lambda}(\Sigma_{t+1}\bar g + \bar z)

(:math:`\bar z, C` and :math:`\bar g, \Gamma`: batch means and covariances of draws and scores). With
:math:`V = L_VL_V^\top` and :math:`W = L_V^\top U L_V = Q\,\mathrm{diag}(w)Q^\top` this is the symmetric
:math:`\Sigma_{t+1} = L_V Q\,\mathrm{diag}\big(2/(1 + \sqrt{1 + 4w})\big) Q^\top L_V^\top`. For a Gaussian target
and :math:`B > D` draws the scores determine the target exactly: one iteration with large :math:`\lambda` lands on it.

Step size :math:`\lambda_t = \lambda_0 D B / t` (the paper's schedule; ``lambda0`` = 1). The iterates fluctuate around
BaM's fixed point by the batch's Monte Carlo noise; the run stops when q no longer moves relative to that
noise (:class:`~varinf.optim.stationarity.ParameterStationarity`) and returns the average of the stationary
iterates. Low-rank-plus-diagonal covariances for high dimensions: :mod:`.bam_lowrank`.

::

    init(loc, cov) -> BaMState                           q = N(loc, cov), float64
    step(state, score_fn, num_draws, lam) -> (state, BaMInfo)   one batch, match
    iterate(state, score_fn, num_draws, schedule)        steps until stationary (Schedule: max_iter, lambda0, tol)
    run(model, family, objective, options, config, ...)  the method: Laplace start -> iterate -> MethodRun

Shapes: :math:`\mu` ``(D,)``, :math:`\Sigma` ``(D, D)``, a batch ``(B, D)``. Cost per iteration: ``B`` gradient
evaluations in one batched call, :math:`O(BD^2 + D^3)` linear algebra (float64).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from ...advice import render
from ...errors import ConvergenceWarning, warn
from ...families import DEFAULT_RANK, FullRank, canonical_family
from ...utils.progress_bars import track
from ..config import FitConfig, check_int, check_positive
from ..initialization import start
from ..result import MethodRun
from ..routing import MethodOptions, gaussian_family
from ..stationarity import Schedule, scores
from . import bam_lowrank

__all__ = ["BaMInfo", "BaMOptions", "BaMState", "Options", "Schedule", "batch_size", "family_options",
           "full_rank_module", "init", "iterate", "run", "step"]  # fmt: skip


@dataclass(frozen=True)
class BaMOptions(MethodOptions):
    """Batch-and-Match's settings (full rank and low rank alike).

    Attributes:
        max_steps: cap on BaM iterations.
        num_draws: draws (score evaluations) per iteration, :math:`B`; default ``D + 2`` within [8, 64] (full
            rank; the scores of a Gaussian target then determine it), ``2 rank + 2`` within [8, 64] (low rank).
        lambda0: scale of the step size :math:`\\lambda_t = \\lambda_0 D B / t`.
        tol_param: stationarity tolerance, in sds of q (:class:`ParameterStationarity`).
    """

    method: ClassVar[str] = "bam"
    max_steps: int = 10_000
    num_draws: int | None = None
    lambda0: float = 1.0
    tol_param: float = 0.05

    def __post_init__(self):
        check_int("max_steps", self.max_steps, 1)
        if self.num_draws is not None:
            check_int("num_draws", self.num_draws, 2)
        check_positive("lambda0", self.lambda0)
        check_positive("tol_param", self.tol_param)


Options = BaMOptions


def family_options(family: str | None) -> frozenset[str]:
    """Full rank takes none; low rank its ``rank``."""
    return frozenset({"rank"}) if family == "lowrank" else frozenset()


def resolve_family(family, dim: int, options: dict, objective):
    """BaM fits a Gaussian with a full or low-rank covariance (``"auto"``: full rank up to 300 dimensions)."""
    return gaussian_family(family, "bam", dim)


@dataclass
class BaMState:
    """q = N(loc, cov) (float64), the iteration count ``t``, the gradient evaluations spent and the ELBO of each
    iteration's q estimated from its own batch (nats; the trace ``FitResult.elbo_trace`` shows)."""

    loc: Tensor
    cov: Tensor
    t: int = 0
    grad_evals: int = 0
    trace: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class BaMInfo:
    """One iteration: the batch's log densities ``(B,)`` and how many draws had a finite density and score."""

    log_density: Tensor
    used: int


def batch_size(dim: int) -> int:
    """Draws per iteration: D + 2 (the scores of a Gaussian target then determine it), between 8 and 64."""
    return max(8, min(dim + 2, 64))


def init(loc: Tensor, cov: Tensor) -> BaMState:
    """The state q = N(loc, cov), in float64."""
    return BaMState(loc.double(), cov.double())


def _match(loc, cov, z, g, lam) -> tuple[Tensor, Tensor]:
    B = z.shape[0]
    zbar, gbar = z.mean(0), g.mean(0)
    zc, gc = z - zbar, g - gbar
    C, Gam = zc.T @ zc / B, gc.T @ gc / B
    r = lam / (1 + lam)
    dm = loc - zbar
    U = lam * Gam + r * torch.outer(gbar, gbar)
    V = cov + lam * C + r * torch.outer(dm, dm)
    LV = torch.linalg.cholesky(0.5 * (V + V.T))
    W = LV.T @ U @ LV
    w, Q = torch.linalg.eigh(0.5 * (W + W.T))
    shrink = 2.0 / (1.0 + (1.0 + 4.0 * w.clamp_min(0)).sqrt())
    A = LV @ (Q * shrink.sqrt())
    new_cov = A @ A.T
    new_loc = loc / (1 + lam) + r * (new_cov @ gbar + zbar)
    return new_loc, 0.5 * (new_cov + new_cov.T)


def step(state: BaMState, score_fn, num_draws: int, lam: float) -> tuple[BaMState, BaMInfo]:
    """One BaM iteration with ``num_draws`` draws and step ``lam``; ``score_fn(z) -> (log p, grad log p)`` for
    ``(B, D)``. Draws with a non-finite density or score are dropped (if fewer than 2 remain, q shrinks towards
    its mean by half instead)."""
    L = torch.linalg.cholesky(state.cov)
    eps = torch.randn(num_draws, L.shape[0], dtype=L.dtype, device=L.device)
    z = state.loc + eps @ L.T
    lp, g = score_fn(z)
    ok = torch.isfinite(lp) & torch.isfinite(g).all(-1)
    t, D, used = state.t + 1, L.shape[0], int(ok.sum())
    elbo = (lp.mean() + L.diagonal().log().sum() + 0.5 * D * (1 + math.log(2 * math.pi))).item()
    trace = [*state.trace, elbo]
    if used < 2:
        return BaMState(state.loc, 0.25 * state.cov, t, state.grad_evals + num_draws, trace), BaMInfo(lp, used)
    loc, cov = _match(state.loc, state.cov, z[ok], g[ok], lam)
    return BaMState(loc, cov, t, state.grad_evals + num_draws, trace), BaMInfo(lp, used)


def iterate(state: BaMState, score_fn, num_draws: int, schedule: Schedule) -> tuple[BaMState, str, bool]:
    """:func:`step` until q is stationary (see the module docstring) or ``schedule.max_iter`` iterations.

    Returns the final state (the average of the stationary window's iterates), the reason and whether it
    converged."""
    D = state.loc.shape[0]
    lambda0 = schedule.lambda0
    mon = schedule.monitor()
    for _ in track(range(schedule.max_iter), "BaM", unit="iterations", capped=True):
        lam = lambda0 * D * num_draws / (state.t + 1)
        try:
            state, _ = step(state, score_fn, num_draws, lam)
        except torch.linalg.LinAlgError:  # numerically indefinite update: keep q, shrink the step
            state = BaMState(state.loc, state.cov, state.t + 1, state.grad_evals + num_draws, state.trace)
            lambda0 *= 0.5
            continue
        if not (torch.isfinite(state.loc).all() and torch.isfinite(state.cov).all()):
            raise FloatingPointError("BaM produced a non-finite mean or covariance")
        if mon.update(state.loc, state.cov, state.loc, state.cov.diagonal().sqrt()):
            loc, cov = mon.average()
            return BaMState(loc, cov, state.t, state.grad_evals, state.trace), mon.reason, True
    loc, cov = mon.average() if mon.ready else (state.loc, state.cov)
    reason = f"{mon.reason or 'still moving'} after {state.t} iterations"
    return BaMState(loc, cov, state.t, state.grad_evals, state.trace), reason, False


def run(model, family, objective, options: BaMOptions, config: FitConfig, family_options: dict) -> MethodRun:
    """Batch-and-Match for a full-rank Gaussian (``family="fullrank"``; ``"lowrank"``: :mod:`.bam_lowrank`).

    Starts at the Laplace approximation when there is one (else at ``init`` with identity covariance) and runs
    at most ``max_steps`` iterations of ``num_draws`` draws."""
    if canonical_family(family) == "lowrank":
        return bam_lowrank.run(model, options, config, family_options.get("rank") or min(DEFAULT_RANK, model.dim))
    t0 = time.perf_counter()
    s = start(model, config, laplace=True)
    model = s.model
    if s.laplace is not None and s.laplace.ok:
        loc, cov = s.laplace.mode, torch.cholesky_inverse(torch.linalg.cholesky(s.laplace.precision))
    else:
        loc, cov = s.u0, torch.eye(model.dim, dtype=s.u0.dtype, device=s.u0.device)
    B = options.num_draws or batch_size(model.dim)
    schedule = Schedule(options.max_steps, options.lambda0, options.tol_param)
    state, reason, converged = iterate(init(loc, cov), scores(model.log_density, s.dtype), B, schedule)
    if not converged:
        warn(f"{model.name}: BaM not converged ({reason}); raise {render('max_steps')}", ConvergenceWarning)
    fam = full_rank_module(state.loc, state.cov).to(device=s.device, dtype=s.dtype)
    return MethodRun(
        model=model, family=fam, objective=objective, elbo_trace=torch.tensor(state.trace, dtype=torch.float64),
        converged=converged, convergence_reason=reason, num_steps=state.t, grad_evals=s.evaluations + state.grad_evals,
        wall_time=time.perf_counter() - t0, method="bam", family_name="fullrank", options=options,
    )  # fmt: skip


def full_rank_module(loc: Tensor, cov: Tensor) -> FullRank:
    """A :class:`~varinf.families.FullRank` family set to N(loc, cov) (its parameters can be optimized further)."""
    L = torch.linalg.cholesky(cov)
    fam = FullRank(loc.shape[0], loc=loc)
    with torch.no_grad():
        fam.loc.copy_(loc)
        fam.log_diag.copy_(L.diagonal().log())
        fam.off_diag.copy_(torch.tril(L, -1))
    return fam
