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

Shapes: :math:`\mu` ``(D,)``, :math:`\Sigma` ``(D, D)``, a batch ``(B, D)``. Cost per iteration: ``B`` gradient
evaluations in one batched call, :math:`O(BD^2 + D^3)` linear algebra (float64).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import ConvergenceWarning
from ..families import FullRank
from ..models import Model
from .config import FitConfig
from .result import FitResult, direct_result
from .start import start
from .stationarity import ParameterStationarity, scores

__all__ = ["BaMState", "bam", "bam_step", "batch_size", "run_bam"]


@dataclass
class BaMState:
    """q = N(loc, cov) (float64), the iteration count ``t``, the gradient evaluations spent and the ELBO of each
    iteration's q estimated from its own batch (nats; the trace ``FitResult.elbo_trace`` shows)."""

    loc: Tensor
    cov: Tensor
    t: int = 0
    grad_evals: int = 0
    trace: list[float] = field(default_factory=list)


def batch_size(dim: int) -> int:
    """Draws per iteration: D + 2 (the scores of a Gaussian target then determine it), between 8 and 64."""
    return max(8, min(dim + 2, 64))


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


def bam_step(state: BaMState, score_fn, B: int, lam: float) -> tuple[BaMState, Tensor]:
    """One BaM iteration with ``B`` draws and step ``lam``; ``score_fn(z) -> (log p, grad log p)`` for ``(B, D)``.

    Draws with a non-finite density or score are dropped (if fewer than 2 remain, q shrinks towards its mean
    by half instead). Returns the new state and the batch's log densities."""
    L = torch.linalg.cholesky(state.cov)
    eps = torch.randn(B, L.shape[0], dtype=L.dtype, device=L.device)
    z = state.loc + eps @ L.T
    lp, g = score_fn(z)
    ok = torch.isfinite(lp) & torch.isfinite(g).all(-1)
    t = state.t + 1
    D = L.shape[0]
    elbo = (lp.mean() + L.diagonal().log().sum() + 0.5 * D * (1 + math.log(2 * math.pi))).item()
    trace = [*state.trace, elbo]
    if int(ok.sum()) < 2:
        return BaMState(state.loc, 0.25 * state.cov, t, state.grad_evals + B, trace), lp
    loc, cov = _match(state.loc, state.cov, z[ok], g[ok], lam)
    return BaMState(loc, cov, t, state.grad_evals + B, trace), lp


def run_bam(state: BaMState, score_fn, B: int, max_iter: int, lambda0: float = 1.0, tol: float = 0.05,
            min_iter: int = 3, noise: float | None = None) -> tuple[BaMState, str, bool]:  # fmt: skip
    """Iterate :func:`bam_step` until q is stationary (see the module docstring) or ``max_iter`` iterations.

    Returns the final state (the average of the stationary window's iterates), the reason and whether it
    converged."""
    D = state.loc.shape[0]
    mon = ParameterStationarity(tol=tol, min_window=min_iter, noise=noise)
    for _ in range(max_iter):
        lam = lambda0 * D * B / (state.t + 1)
        try:
            state, _ = bam_step(state, score_fn, B, lam)
        except torch.linalg.LinAlgError:  # numerically indefinite update: keep q, shrink the step
            state = BaMState(state.loc, state.cov, state.t + 1, state.grad_evals + B, state.trace)
            lambda0 *= 0.5
            continue
        if not (torch.isfinite(state.loc).all() and torch.isfinite(state.cov).all()):
            raise FloatingPointError("BaM produced a non-finite mean or covariance")
        mean, sd = state.loc, state.cov.diagonal().sqrt()
        if mon.update(state.loc, state.cov, mean, sd):
            loc, cov = mon.average()
            return BaMState(loc, cov, state.t, state.grad_evals, state.trace), mon.reason, True
    loc, cov = mon.average() if mon.ready else (state.loc, state.cov)
    reason = f"{mon.reason or 'still moving'} after {state.t} iterations"
    return BaMState(loc, cov, state.t, state.grad_evals, state.trace), reason, False


def bam(model: Model, family, objective, config: FitConfig, family_kwargs: dict) -> FitResult:
    """Batch-and-Match for a full-rank Gaussian (``family="fullrank"``; ``"lowrank"``: :mod:`.bam_lowrank`).

    Starts at the Laplace approximation when there is one (else at ``init`` with identity covariance) and runs
    at most ``max_steps`` iterations of ``batch_size`` draws (``family_kwargs``: ``batch_size``, ``lambda0``)."""
    from .bam_lowrank import bam_lowrank
    from .pathfinder import _gaussian_label

    label = _gaussian_label(family, "bam")
    if label == "lowrank":
        return bam_lowrank(model, family, objective, config, family_kwargs)
    t0 = time.perf_counter()
    kw = dict(family_kwargs)
    s = start(model, config, laplace=True)
    model = s.model
    B = int(kw.pop("batch_size", batch_size(model.dim)))
    lambda0 = float(kw.pop("lambda0", 1.0))
    if kw:
        raise TypeError(f"unexpected keyword arguments for bam: {sorted(kw)}")
    if s.laplace is not None and s.laplace.ok:
        loc, cov = s.laplace.mode, torch.cholesky_inverse(torch.linalg.cholesky(s.laplace.precision))
    else:
        loc, cov = s.u0, torch.eye(model.dim, dtype=s.u0.dtype, device=s.u0.device)
    state = BaMState(loc.double(), cov.double())
    state, reason, converged = run_bam(state, scores(model.log_density, s.dtype), B, config.max_steps, lambda0,
                                       config.tol_param)  # fmt: skip
    if not converged:
        warnings.warn(f"{model.name}: BaM not converged ({reason})", ConvergenceWarning, stacklevel=4)
    return gaussian_result(model, s, state, objective, reason, converged, "bam", label, t0,
                           s.evaluations + state.grad_evals)


def gaussian_result(model, s, state: BaMState, objective, reason: str, converged: bool, method: str, label: str,
                    t0: float, grad_evals: int) -> FitResult:  # fmt: skip
    """A :class:`FitResult` holding q = N(state.loc, state.cov) as a :class:`~varinf.families.FullRank` module."""
    fam = full_rank_module(state.loc, state.cov).to(device=s.device, dtype=s.dtype)
    return direct_result(model, fam, objective, state.trace, converged=converged, reason=reason, num_steps=state.t,
                         grad_evals=grad_evals, t0=t0, method=method, family_name=label)  # fmt: skip


def full_rank_module(loc: Tensor, cov: Tensor) -> FullRank:
    """A :class:`~varinf.families.FullRank` family set to N(loc, cov) (its parameters can be optimized further)."""
    L = torch.linalg.cholesky(cov)
    fam = FullRank(loc.shape[0], loc=loc)
    with torch.no_grad():
        fam.loc.copy_(loc)
        fam.log_diag.copy_(L.diagonal().log())
        fam.off_diag.copy_(torch.tril(L, -1))
    return fam

