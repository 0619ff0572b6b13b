r"""Hamiltonian Monte Carlo over a batch of independent chains, shared by bridge sampling and AIS.

One HMC transition (Neal 2011, "MCMC using Hamiltonian dynamics", arXiv:1206.1901) for ``N`` chains at
once, in coordinates whitened by a metric: :math:`u = L x` with :math:`LL^\top = \Sigma` (an estimate of the
target's covariance), so the momentum is :math:`N(0, I)` in :math:`x` and every direction has unit scale.
Gradients come from torch autograd. Every model gradient is counted (:class:`Target.grad_evals`: one per
chain per leapfrog step), which is the cost the evidence methods report.

The metric comes from :func:`gaussian_metric`: the curvature of :math:`\log p` at q's mean (central
differences of the gradient along q's own axes, ``2D`` gradients) where it is positive definite, else q's
covariance. For a Gaussian posterior the curvature is exact and HMC draws nearly independent points.

Shapes: positions ``(N, D)``, log densities ``(N,)`` (float64 in the caller's dtype), ``L`` ``(D, D)``.
Non-finite log densities count as :math:`-\infty` (the proposal is rejected, never propagated).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

__all__ = [
    "ChainState",
    "Metric",
    "Target",
    "adapt_step_size",
    "check_dtype",
    "gaussian_metric",
    "hmc_step",
    "q_moments",
]


class Target:
    r"""The model's :math:`\log p_U(u)` (and optionally a Distribution q's :math:`\log q(u)`) with gradients,
    counting model gradient evaluations (:attr:`grad_evals`, one per row of ``u``).

    HMC targets :math:`\log\pi_\beta = \beta\log p_U + (1-\beta)\log q` (AIS's path; ``beta = 1`` is the
    posterior), recombined from the two parts stored in :class:`ChainState` at no extra cost.
    """

    def __init__(self, log_p: Callable[[Tensor], Tensor], q: Distribution | None = None):
        self.log_p, self.q = log_p, q
        self.grad_evals = 0
        self.density_evals = 0

    def __call__(self, u: Tensor) -> ChainState:
        u = u.detach().requires_grad_(True)
        with torch.enable_grad():
            lp = self.log_p(u)
            ok = torch.isfinite(lp)
            (gp,) = torch.autograd.grad(torch.where(ok, lp, torch.zeros_like(lp)).sum(), u)
            if self.q is not None:
                lq = self.q.log_prob(u)
                (gq,) = torch.autograd.grad(lq.sum(), u)
            else:
                lq, gq = torch.zeros_like(lp), torch.zeros_like(u)
        self.grad_evals += u.shape[0]
        lp = torch.where(ok, lp, torch.full_like(lp, -math.inf)).detach()
        gp = torch.where(ok[:, None] & torch.isfinite(gp), gp, torch.zeros_like(gp))
        return ChainState(u.detach(), lp, gp.detach(), lq.detach(), gq.detach())

    @torch.no_grad()
    def log_p_only(self, u: Tensor) -> Tensor:
        r""":math:`\log p_U(u)` without gradients (counted as density evaluations)."""
        self.density_evals += u.shape[0]
        lp = self.log_p(u)
        return torch.where(torch.isfinite(lp), lp, torch.full_like(lp, -math.inf))


@dataclass
class ChainState:
    r"""Positions ``u`` ``(N, D)`` with :math:`\log p_U`, :math:`\log q` ``(N,)`` and their gradients ``(N, D)``."""

    u: Tensor
    log_p: Tensor
    grad_p: Tensor
    log_q: Tensor
    grad_q: Tensor

    def log_pi(self, beta: float) -> Tensor:
        if beta == 1.0:
            return self.log_p
        return beta * self.log_p + (1 - beta) * self.log_q

    def grad(self, beta: float) -> Tensor:
        if beta == 1.0:
            return self.grad_p
        return beta * self.grad_p + (1 - beta) * self.grad_q

    def where(self, keep_new: Tensor, new: ChainState) -> ChainState:
        k = keep_new[:, None]
        return ChainState(
            torch.where(k, new.u, self.u),
            torch.where(keep_new, new.log_p, self.log_p),
            torch.where(k, new.grad_p, self.grad_p),
            torch.where(keep_new, new.log_q, self.log_q),
            torch.where(k, new.grad_q, self.grad_q),
        )


def hmc_step(
    target: Target, state: ChainState, scale_tril: Tensor, step_size: float, num_leapfrog: int, beta: float = 1.0
) -> tuple[ChainState, Tensor]:
    r"""One HMC transition per chain targeting :math:`\pi_\beta`: ``num_leapfrog`` leapfrog steps of size
    ``step_size`` in the coordinates :math:`x = L^{-1} u`, then a Metropolis accept/reject per chain.

    Returns the new state and the ``(N,)`` acceptance probabilities :math:`\min(1, e^{-\Delta H})`.
    """
    L = scale_tril
    p0 = torch.randn_like(state.u)
    p = p0 + 0.5 * step_size * (state.grad(beta) @ L)
    new = state
    for i in range(num_leapfrog):
        new = target(new.u + step_size * (p @ L.T))
        p = p + (step_size if i < num_leapfrog - 1 else 0.5 * step_size) * (new.grad(beta) @ L)
    log_ratio = (new.log_pi(beta) - 0.5 * p.square().sum(-1)) - (state.log_pi(beta) - 0.5 * p0.square().sum(-1))
    log_ratio = torch.where(torch.isnan(log_ratio), torch.full_like(log_ratio, -math.inf), log_ratio)
    accept_prob = log_ratio.clamp(max=0.0).exp()
    accept = torch.rand_like(accept_prob) < accept_prob
    return state.where(accept, new), accept_prob


def trajectory_step(num_leapfrog: int) -> float:
    r"""A step size giving a random trajectory length :math:`\tau \sim U(0.6, 1.1)\,\pi/2` in whitened units.

    On a standard normal an HMC trajectory of length :math:`t` rotates :math:`(x, p)` by the angle :math:`t`: near
    :math:`\pi/2` the new point is independent of the old, near :math:`\pi` it is :math:`-x` (the same
    :math:`x^2`, i.e. no progress on the log density, which is what evidence estimates need). The jitter avoids
    a fixed resonance in other directions (Neal 2011, §5.4.2.2)."""
    tau = (0.6 + 0.5 * float(torch.rand(()))) * math.pi / 2
    return tau / num_leapfrog


def adapt_step_size(step_size: float, accept_prob: Tensor, target_accept: float = 0.8) -> float:
    """Multiplicative Robbins–Monro step on log step size from the chains' mean acceptance probability."""
    mean = float(accept_prob.mean())
    return step_size * math.exp(1.5 * (mean - target_accept))


@torch.no_grad()
def q_moments(q: Distribution, num_draws: int = 2000) -> tuple[Tensor, Tensor]:
    """q's mean ``(D,)`` and covariance ``(D, D)``: exact for Gaussians, else from ``num_draws`` draws."""
    try:
        mean = q.mean
        cov = q.covariance_matrix if hasattr(q, "covariance_matrix") else torch.diag_embed(q.variance)
        if torch.isfinite(mean).all() and torch.isfinite(cov).all():
            return mean.detach(), cov.detach()
    except (NotImplementedError, AttributeError):
        pass
    u = q.sample((num_draws,))
    mean = u.mean(0)
    c = u - mean
    return mean, c.T @ c / (num_draws - 1)


def _stable_cholesky(cov: Tensor) -> Tensor:
    cov = 0.5 * (cov + cov.T)
    scale = cov.diagonal().abs().mean().clamp_min(1e-300)
    for jitter in (0.0, 1e-10, 1e-8, 1e-6, 1e-4):
        eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
        L, info = torch.linalg.cholesky_ex(cov + jitter * scale * eye)
        if int(info) == 0:
            return L
    return torch.diag(cov.diagonal().abs().clamp_min(1e-12 * scale).sqrt())


@dataclass
class Metric:
    """A Gaussian view of the posterior used to precondition HMC (and to start AIS's path).

    Attributes:
        loc: ``(D,)`` q's mean, where the curvature was taken.
        posterior_loc: ``(D,)`` one Newton step from ``loc`` (the Gaussian view's mean; ``loc`` without curvature).
        posterior_cov: ``(D, D)`` inverse curvature of :math:`-\\log p_U` (or q's covariance when that is not
            positive definite); ``posterior_precision`` its inverse.
        q_cov: ``(D, D)`` q's covariance.
        source: ``"curvature"`` or ``"q"``.
        grad_evals: gradients spent (``2D`` for the curvature, else 0).
    """

    loc: Tensor
    posterior_cov: Tensor
    posterior_precision: Tensor
    q_cov: Tensor
    source: str
    grad_evals: int
    posterior_loc: Tensor | None = None

    @property
    def scale_tril(self) -> Tensor:
        return _stable_cholesky(self.posterior_cov)


@torch.no_grad()
def gaussian_metric(target: Target, q: Distribution, dim: int, step: float = 0.2, max_dim: int = 400) -> Metric:
    r"""Curvature of :math:`\log p_U` at q's mean by central differences of the gradient along q's axes:

    .. math:: A_{:,i} = S^\top\,\frac{\nabla\log p(m + h S e_i) - \nabla\log p(m - h S e_i)}{2h},
              \qquad \Sigma_{\rm post} \approx S (-A)^{-1} S^\top,

    with :math:`SS^\top` q's covariance and :math:`h` = ``step`` q-sds (exact for a Gaussian posterior, a
    smoothed curvature otherwise). Directions where :math:`-A` is not positive keep q's scale. Costs ``2D``
    model gradients; above ``max_dim`` dimensions q's covariance is used instead (no cost).
    """
    mean, q_cov = q_moments(q)
    S = _stable_cholesky(q_cov)
    if dim > max_dim:
        return Metric(mean, q_cov, torch.cholesky_inverse(S), q_cov, "q", 0, mean)
    eye = torch.eye(dim, dtype=mean.dtype, device=mean.device)
    pts = torch.cat([mean + step * S.T, mean - step * S.T])  # rows m ± h S e_i
    probe = target(pts)
    if not bool(torch.isfinite(probe.log_p).all()):  # the stencil left the support: no curvature here
        return Metric(mean, q_cov, torch.cholesky_inverse(S), q_cov, "q", 2 * dim, mean)
    g = probe.grad_p
    G = (g[:dim] - g[dim:]).T / (2 * step)  # column i: H S e_i
    g_mean = 0.5 * (g[:dim] + g[dim:]).mean(0)  # the gradient at the mean, to second order
    A = -(S.T @ G)
    A = 0.5 * (A + A.T)
    evals, evecs = torch.linalg.eigh(A)
    finite = bool(torch.isfinite(evals).all())
    if not finite:
        return Metric(mean, q_cov, torch.cholesky_inverse(S), q_cov, "q", 2 * dim, mean)
    # keep q's unit scale where the curvature is not clearly positive (non-log-concave or flat directions)
    evals = torch.where(evals > 1e-4, evals.clamp(max=1e8), torch.ones_like(evals))
    A_inv = (evecs / evals) @ evecs.T
    cov = S @ A_inv @ S.T
    Sinv = torch.linalg.solve_triangular(S, eye, upper=False)
    prec = Sinv.T @ ((evecs * evals) @ evecs.T) @ Sinv
    cov = 0.5 * (cov + cov.T)
    return Metric(mean, cov, 0.5 * (prec + prec.T), q_cov, "curvature", 2 * dim, mean + cov @ g_mean)


def check_dtype(model, q: Distribution) -> None:
    """Raise a one-line error when q's draws and the model's data have different floating dtypes (the HMC
    arithmetic mixes them)."""
    with torch.no_grad():
        u = q.sample((1,))
    ref = next((b for b in model.buffers() if b.is_floating_point()), None)
    if ref is not None and u.dtype != ref.dtype:
        raise ValueError(
            f"q draws {u.dtype} but {model.name}'s data are {ref.dtype}: use one dtype (e.g. model.double() and a "
            "float64 fit)"
        )
