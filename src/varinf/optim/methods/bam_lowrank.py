r"""Batch-and-Match for a low-rank-plus-diagonal Gaussian :math:`q = N(\mu, \Psi + \Lambda\Lambda^\top)`:
batch, match, and patch (Modi, Cai, Saul et al. 2025, arXiv:2410.22292; BaM: Cai et al. 2024, arXiv:2402.14758).

::

    batch:  B draws of q_t, scores g_b in one batched call
    match:  the BaM update (optim/bam.py) in factored form: with U = QQ^T (rank B+1) and V = Psi + RR^T
            (R = [Lambda, sqrt(lam) X_c^T, sqrt(lam/(1+lam)) (mu - zbar)]), the push-through identity gives
            Sigma* = V - VQ (M^2)^{-1} Q^T V,  M = I/2 + (I/4 + Q^T V Q)^{1/2}   ((B+1) x (B+1))
    patch:  a few EM steps of factor analysis fit Psi' + Lambda' Lambda'^T to Sigma* (minimizing
            KL(N(0, Sigma*) || N(0, Psi' + Lambda' Lambda'^T))), warm-started at the current factors

Nothing :math:`D \times D` is formed. ``method="bam"`` with ``family="lowrank"`` runs :func:`run` (the options are
``BaMOptions``; the rank is the low-rank family's ``rank`` option); ``method="auto"`` uses :func:`patch` to turn
Pathfinder's Gaussian into a low-rank start. Shapes: :math:`\mu, \Psi` ``(D,)``, :math:`\Lambda` ``(D, k)``.
Cost per iteration: ``B`` gradient evaluations (one batched call) and :math:`O(D (k+B)^2)` linear algebra.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ...errors import ConvergenceWarning, warn
from ...families import LowRank
from ..config import FitConfig
from ..initialization import start
from ..result import MethodRun
from ..stationarity import ParameterStationarity, Schedule, scores

if TYPE_CHECKING:
    from .bam import BaMOptions

__all__ = ["LowRankState", "init", "iterate", "lowrank_module", "patch", "run", "step"]

EM_STEPS = 10


@dataclass
class LowRankState:
    """q = N(loc, diag(psi) + lam lam^T) (float64), iteration count and gradient evaluations."""

    loc: Tensor
    psi: Tensor
    lam: Tensor
    t: int = 0
    grad_evals: int = 0

    @property
    def variance(self) -> Tensor:
        return self.psi + self.lam.square().sum(1)


def patch(cov_mv, cov_diag: Tensor, psi: Tensor, lam: Tensor, steps: int = EM_STEPS) -> tuple[Tensor, Tensor]:
    r"""Factor-analysis EM: :math:`\Psi + \Lambda\Lambda^\top` closest in KL to a covariance known through
    ``cov_mv(X)`` (:math:`\Sigma X` for ``X`` ``(D, k)``) and its diagonal ``cov_diag``, from ``(psi, lam)``."""
    k = lam.shape[1]
    eye = torch.eye(k, dtype=lam.dtype, device=lam.device)
    floor = 1e-10 * cov_diag.clamp_min(1e-300)
    for _ in range(steps):
        lt_pinv = lam.T / psi  # (k, D)
        beta = torch.linalg.solve(eye + lt_pinv @ lam, lt_pinv)  # Lambda^T (Psi + Lambda Lambda^T)^{-1}
        sbt = cov_mv(beta.T)  # Sigma beta^T, (D, k)
        lam = torch.linalg.solve((eye - beta @ lam + beta @ sbt).T, sbt.T).T
        psi = torch.maximum(cov_diag - (lam * sbt).sum(1), floor)
    return psi, lam


def _match_patch(st: LowRankState, z: Tensor, g: Tensor, lam_step: float, em_steps: int) -> LowRankState:
    B = z.shape[0]
    zbar, gbar = z.mean(0), g.mean(0)
    xc, gc = (z - zbar) / math.sqrt(B), (g - gbar) / math.sqrt(B)
    r = lam_step / (1 + lam_step)
    Qm = torch.cat([math.sqrt(lam_step) * gc.T, math.sqrt(r) * gbar[:, None]], 1)  # U = Qm Qm^T
    R = torch.cat([st.lam, math.sqrt(lam_step) * xc.T, math.sqrt(r) * (st.loc - zbar)[:, None]], 1)
    VQ = st.psi[:, None] * Qm + R @ (R.T @ Qm)
    K = Qm.T @ VQ
    kappa, P = torch.linalg.eigh(0.5 * (K + K.T))
    Y = VQ @ (P / (0.5 + (0.25 + kappa.clamp_min(0)).sqrt()))  # Sigma* = Psi + R R^T - Y Y^T

    def cov_mv(X: Tensor) -> Tensor:
        return st.psi[:, None] * X + R @ (R.T @ X) - Y @ (Y.T @ X)

    diag = st.psi + R.square().sum(1) - Y.square().sum(1)
    loc = st.loc / (1 + lam_step) + r * (cov_mv(gbar[:, None])[:, 0] + zbar)
    psi, lam = patch(cov_mv, diag, st.psi, st.lam, em_steps)
    return LowRankState(loc, psi, lam, st.t + 1, st.grad_evals + B)


def _average_lowrank(mon: ParameterStationarity) -> tuple[Tensor, Tensor, Tensor]:
    """Average the window's q's: means and covariances averaged, the covariance re-patched into low rank."""
    window = mon.params[-mon.window :]
    loc = torch.stack([w[0] for w in window]).mean(0)
    psi0, lam0 = window[-1][1], window[-1][2]
    n = len(window)

    def cov_mv(X: Tensor) -> Tensor:
        return sum(w[1][:, None] * X + w[2] @ (w[2].T @ X) for w in window) / n

    diag = sum(w[1] + w[2].square().sum(1) for w in window) / n
    psi, lam = patch(cov_mv, diag, psi0, lam0)
    return loc, psi, lam


def lowrank_module(state: LowRankState) -> LowRank:
    """A :class:`~varinf.families.LowRank` family set to the state's q."""
    D, k = state.lam.shape
    fam = LowRank(D, rank=k, loc=state.loc)
    with torch.no_grad():
        fam.loc.copy_(state.loc)
        fam.cov_factor.copy_(state.lam)
        fam.log_diag_scale.copy_(0.5 * state.psi.log())
    return fam


def step(state: LowRankState, score_fn, num_draws: int, lam_step: float, em_steps: int = EM_STEPS
         ) -> tuple[LowRankState, int]:  # fmt: skip
    """One batch-match-patch iteration with ``num_draws`` draws and step ``lam_step``: the new state and how many
    draws had a finite density and score (the others are dropped; with fewer than 2 left, q shrinks towards its
    mean instead)."""
    D = state.loc.shape[0]
    eps = torch.randn(num_draws, D, dtype=state.loc.dtype, device=state.loc.device)
    xi = torch.randn(num_draws, state.lam.shape[1], dtype=state.loc.dtype, device=state.loc.device)
    z = state.loc + state.psi.sqrt() * eps + xi @ state.lam.T
    lp, g = score_fn(z)
    ok = torch.isfinite(lp) & torch.isfinite(g).all(-1)
    used = int(ok.sum())
    if used < 2:
        return LowRankState(state.loc, 0.25 * state.psi, 0.5 * state.lam, state.t + 1, state.grad_evals + num_draws), used
    new = _match_patch(state, z[ok], g[ok], lam_step, em_steps)
    new.grad_evals += num_draws - used
    return new, used


def iterate(state: LowRankState, score_fn, num_draws: int, schedule: Schedule, em_steps: int = EM_STEPS
            ) -> tuple[LowRankState, str, bool]:  # fmt: skip
    """:func:`step` until q is stationary (:class:`ParameterStationarity`) or ``schedule.max_iter`` iterations
    (``em_steps`` factor-analysis EM steps per patch)."""
    D = state.loc.shape[0]
    mon = schedule.monitor()
    for _ in range(schedule.max_iter):
        state, used = step(state, score_fn, num_draws, schedule.lambda0 * D * num_draws / (state.t + 1), em_steps)
        if used < 2:
            continue
        if not (torch.isfinite(state.loc).all() and torch.isfinite(state.lam).all()):
            raise FloatingPointError("low-rank BaM produced a non-finite mean or factor")
        if mon.update(state.loc, state.psi, state.lam, state.loc, state.variance.sqrt()):
            loc, psi, lam = _average_lowrank(mon)
            return LowRankState(loc, psi, lam, state.t, state.grad_evals), mon.reason, True
    loc, psi, lam = _average_lowrank(mon) if mon.ready else (state.loc, state.psi, state.lam)
    reason = f"{mon.reason or 'still moving'} after {state.t} iterations"
    return LowRankState(loc, psi, lam, state.t, state.grad_evals), reason, False


def init(loc: Tensor, psi: Tensor, rank: int) -> LowRankState:
    r""":math:`q = N(\mathrm{loc}, \mathrm{diag}(\psi) + \Lambda\Lambda^\top)` with a small random :math:`\Lambda`
    (a fixed generator: seeded fits stay reproducible), in float64."""
    g = torch.Generator().manual_seed(0)
    lam = 0.01 * psi.sqrt()[:, None] * torch.randn(loc.shape[0], rank, generator=g, dtype=torch.float64).to(loc.device)
    return LowRankState(loc, psi, lam)


def run(model, options: BaMOptions, config: FitConfig, rank: int) -> MethodRun:
    """Low-rank BaM: from ``init`` (the Laplace mode when there is one, with :math:`\\Psi` its diagonal
    curvature's inverse; else :math:`\\Psi = I`) with a small random :math:`\\Lambda` of ``rank`` columns."""
    t0 = time.perf_counter()
    s = start(model, config, laplace=True)
    model = s.model
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= model.dim:
        raise ValueError(f"rank must be between 1 and dim={model.dim}, got {rank!r}")
    found = s.laplace is not None and s.laplace.ok
    loc = (s.laplace.mode if found else s.u0).double()
    psi = s.laplace.precision.diagonal().double().reciprocal() if found else torch.ones(
        model.dim, dtype=torch.float64, device=loc.device)  # fmt: skip
    B = options.num_draws or max(8, min(2 * rank + 2, 64))
    schedule = Schedule(options.max_steps, options.lambda0, options.tol_param)
    state, reason, converged = iterate(init(loc, psi, rank), scores(model.log_density, s.dtype), B, schedule)
    if not converged:
        warn(f"{model.name}: low-rank BaM not converged ({reason})", ConvergenceWarning)
    fam = lowrank_module(state).to(device=s.device, dtype=s.dtype)
    return MethodRun(
        model=model, family=fam, objective=None, elbo_trace=torch.zeros(0, dtype=torch.float64), converged=converged,
        convergence_reason=reason, num_steps=state.t, grad_evals=s.evaluations + state.grad_evals,
        wall_time=time.perf_counter() - t0, method="bam", family_name="lowrank", options=options,
        family_options={"rank": rank},
    )  # fmt: skip
