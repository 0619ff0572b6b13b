r"""Batch-and-Match for a low-rank-plus-diagonal Gaussian :math:`q = N(\mu, \Psi + \Lambda\Lambda^\top)`:
batch, match, and patch (Modi, Cai, Saul et al. 2025, arXiv:2410.22292; BaM: Cai et al. 2024, arXiv:2402.14758).

::

    batch:  B draws of q_t, scores g_b in one batched call
    match:  the BaM update (optim/bam.py) in factored form: with U = QQ^T (rank B+1) and V = Psi + RR^T
            (R = [Lambda, sqrt(lam) X_c^T, sqrt(lam/(1+lam)) (mu - zbar)]), the push-through identity gives
            Sigma* = V - VQ (M^2)^{-1} Q^T V,  M = I/2 + (I/4 + Q^T V Q)^{1/2}   ((B+1) x (B+1))
    patch:  a few EM steps of factor analysis fit Psi' + Lambda' Lambda'^T to Sigma* (minimizing
            KL(N(0, Sigma*) || N(0, Psi' + Lambda' Lambda'^T))), warm-started at the current factors

Nothing :math:`D \times D` is formed. Shapes: :math:`\mu, \Psi` ``(D,)``, :math:`\Lambda` ``(D, k)``.
Cost per iteration: ``B`` gradient evaluations (one batched call) and :math:`O(D (k+B)^2)` linear algebra.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from ..families import LowRank
from ..families.gaussian import DEFAULT_RANK
from ..models import Model
from .config import FitConfig
from .errors import ConvergenceWarning
from .result import FitResult, direct_result
from .start import start
from .stationarity import ParameterStationarity, scores

__all__ = ["LowRankState", "bam_lowrank", "patch", "run_bam_lowrank"]

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


def run_bam_lowrank(state: LowRankState, score_fn, B: int, max_iter: int, lambda0: float = 1.0, tol: float = 0.05,
                    min_iter: int = 3, noise: float | None = None, em_steps: int = EM_STEPS) -> tuple[LowRankState, str, bool]:  # fmt: skip
    """Iterate batch-match-patch until q is stationary (:class:`ParameterStationarity`) or ``max_iter``."""
    D = state.loc.shape[0]
    mon = ParameterStationarity(tol=tol, min_window=min_iter, noise=noise)
    for _ in range(max_iter):
        lam_step = lambda0 * D * B / (state.t + 1)
        eps = torch.randn(B, D, dtype=state.loc.dtype, device=state.loc.device)
        xi = torch.randn(B, state.lam.shape[1], dtype=state.loc.dtype, device=state.loc.device)
        z = state.loc + state.psi.sqrt() * eps + xi @ state.lam.T
        lp, g = score_fn(z)
        ok = torch.isfinite(lp) & torch.isfinite(g).all(-1)
        if int(ok.sum()) < 2:
            state = LowRankState(state.loc, 0.25 * state.psi, 0.5 * state.lam, state.t + 1, state.grad_evals + B)
            continue
        state = _match_patch(state, z[ok], g[ok], lam_step, em_steps)
        state.grad_evals += B - int(ok.sum())
        if not (torch.isfinite(state.loc).all() and torch.isfinite(state.lam).all()):
            raise FloatingPointError("low-rank BaM produced a non-finite mean or factor")
        if mon.update(state.loc, state.psi, state.lam, state.loc, state.variance.sqrt()):
            loc, psi, lam = _average_lowrank(mon)
            return LowRankState(loc, psi, lam, state.t, state.grad_evals), mon.reason, True
    loc, psi, lam = _average_lowrank(mon) if mon.ready else (state.loc, state.psi, state.lam)
    reason = f"{mon.reason or 'still moving'} after {state.t} iterations"
    return LowRankState(loc, psi, lam, state.t, state.grad_evals), reason, False


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


def bam_lowrank(model: Model, family, objective, config: FitConfig, family_kwargs: dict) -> FitResult:
    """Low-rank BaM (``family="lowrank"``, ``rank`` from ``family_kwargs``, default 2): from ``init`` (Laplace
    mode when there is one) with :math:`\\Psi = I` and a small random :math:`\\Lambda`."""
    t0 = time.perf_counter()
    kw = dict(family_kwargs)
    rank = int(kw.pop("rank", min(DEFAULT_RANK, model.dim)))
    B = int(kw.pop("batch_size", max(8, min(2 * rank + 2, 64))))
    lambda0 = float(kw.pop("lambda0", 1.0))
    if kw:
        raise TypeError(f"unexpected keyword arguments for bam (lowrank): {sorted(kw)}")
    if not 1 <= rank <= model.dim:
        raise ValueError(f"rank must be between 1 and dim={model.dim}, got {rank}")
    s = start(model, config, laplace=True)
    model = s.model
    D = model.dim
    g = torch.Generator().manual_seed(0)
    loc = (s.laplace.mode if s.laplace is not None and s.laplace.ok else s.u0).double()
    psi = torch.ones(D, dtype=torch.float64, device=loc.device)
    if s.laplace is not None and s.laplace.ok:
        psi = s.laplace.precision.diagonal().double().reciprocal()
    lam = 0.01 * psi.sqrt()[:, None] * torch.randn(D, rank, generator=g, dtype=torch.float64).to(loc.device)
    state = LowRankState(loc, psi, lam)
    state, reason, converged = run_bam_lowrank(state, scores(model.log_density, s.dtype), B, config.max_steps,
                                               lambda0, config.tol_param)  # fmt: skip
    if not converged:
        warnings.warn(f"{model.name}: low-rank BaM not converged ({reason})", ConvergenceWarning, stacklevel=4)
    return lowrank_result(model, s, state, objective, reason, converged, "bam", t0, s.evaluations + state.grad_evals)


def lowrank_result(model, s, state: LowRankState, objective, reason, converged, method, t0, grad_evals) -> FitResult:
    fam = lowrank_module(state).to(device=s.device, dtype=s.dtype)
    return direct_result(model, fam, objective, [], converged=converged, reason=reason, num_steps=state.t,
                         grad_evals=grad_evals, t0=t0, method=method, family_name="lowrank")  # fmt: skip
