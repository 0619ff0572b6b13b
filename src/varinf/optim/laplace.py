r"""Laplace initialization: start q at the posterior mode with the curvature there.

Adam on a variational family crawls along ill-conditioned posteriors (regressions with uncentered
predictors have correlations near ±1; kidiq, sblr and diamonds in posteriordb); starting from the
mode :math:`\hat u = \arg\max \log p_U(u)` (L-BFGS) with the Hessian :math:`H = -\nabla^2 \log p_U(\hat u)`
puts q where the ELBO optimum nearly is (Pathfinder, Zhang et al. 2022, arXiv:2108.03782, starts from the
same L-BFGS path). The family is then fitted in coordinates whitened by this Laplace approximation
(:func:`preconditioned_family`), where every direction has unit scale.

Hierarchical models often have no mode (the funnel's density grows without bound as the scale → 0):
when L-BFGS does not converge to a finite point with a small gradient, or H is not positive definite,
the caller falls back to the plain initial point (``LaplaceInit.ok`` is False and ``reason`` says why).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["LaplaceInit", "laplace_init", "preconditioned_family"]


@dataclass
class LaplaceInit:
    ok: bool
    reason: str
    mode: Tensor | None = None
    precision: Tensor | None = None  # H, (D, D)
    evaluations: int = 0


@dataclass
class _Mode:
    ok: bool
    reason: str
    mode: Tensor | None = None
    log_density: float = -math.inf


def _find_mode(log_density, u0: Tensor, max_iter: int, restarts: int, count: list[int]) -> _Mode:
    """L-BFGS from ``u0``; ``count[0]`` accumulates density evaluations."""
    u = u0.detach().clone().reshape(-1).requires_grad_(True)
    opt = torch.optim.LBFGS([u], lr=1.0, max_iter=max_iter, tolerance_grad=1e-7, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")  # fmt: skip

    def closure():
        opt.zero_grad()
        loss = -log_density(u[None])[0]
        count[0] += 1
        if not torch.isfinite(loss):
            # make the line search back off instead of propagating NaN into the history
            return torch.full_like(loss, float("inf"))
        loss.backward()
        return loss

    # torch's L-BFGS stops after max_eval = 1.25 max_iter evaluations (line-search ones included), which a
    # start next to a non-finite region can use up far from the mode (line searches backing off from NaN);
    # a few restarts from where it stopped finish the job.
    best = -math.inf
    for _ in range(restarts + 1):
        try:
            opt.step(closure)
        except (RuntimeError, ValueError) as e:  # a NaN inside the line search, or the model refusing a point
            return _Mode(False, f"L-BFGS failed ({e})")
        mode = u.detach()
        if not bool(torch.isfinite(mode).all()):
            return _Mode(False, "no finite mode (the density may grow without bound, e.g. a funnel)")
        v = mode.clone().requires_grad_(True)
        lp = log_density(v[None])[0]
        (g,) = torch.autograd.grad(lp, v)
        count[0] += 1
        grad_norm = g.abs().max().item()
        stationary = math.isfinite(lp.item()) and grad_norm <= 1e-3 * max(1.0, abs(lp.item())) ** 0.5
        if stationary or not math.isfinite(lp.item()) or lp.item() <= best + 1e-9 * max(1.0, abs(best)):
            break  # done, hopeless, or a round without progress (no mode to find, e.g. a funnel)
        best = lp.item()
    if not stationary:
        return _Mode(False, f"L-BFGS did not reach a stationary point (max |gradient| {grad_norm:.3g})")
    return _Mode(True, "mode found", mode.clone(), lp.item())


def laplace_init(
    log_density,
    u0: Tensor,
    max_iter: int = 300,
    max_dim: int = 1000,
    restarts: int = 3,
    extra_starts: int = 0,
    generator: torch.Generator | None = None,
) -> LaplaceInit:
    """Find the mode of ``log_density`` (``(1, D) -> (1,)``) from ``u0`` and the Hessian there.

    With ``extra_starts`` > 0, L-BFGS also runs from that many U(-2, 2) points (Stan's initialization) and
    the highest mode wins; one found from ``u0`` is kept unless another is higher by more than
    1e-6 |log p| + 1e-3 nats, so unimodal targets give exactly the single-start result. Multimodal
    posteriors (HMMs, mixtures) otherwise land in whichever mode is downhill of ``u0``.
    At most ``(extra_starts + 1) (restarts + 1) 1.25 max_iter`` density evaluations, plus D for the Hessian.
    """
    D = u0.numel()
    if D > max_dim:
        return LaplaceInit(False, f"dimension {D} > {max_dim}: Hessian not attempted")
    count = [0]
    best = _find_mode(log_density, u0, max_iter, restarts, count)
    for _ in range(extra_starts):
        start = (torch.rand(D, generator=generator) * 4 - 2).to(u0)
        other = _find_mode(log_density, start, max_iter, restarts, count)
        if other.ok and (not best.ok or other.log_density > best.log_density + 1e-6 * abs(best.log_density) + 1e-3):
            best = other
    if not best.ok:
        return LaplaceInit(False, best.reason, evaluations=count[0])
    mode = best.mode
    H = -torch.autograd.functional.hessian(lambda x: log_density(x[None])[0], mode)
    H = 0.5 * (H + H.T)
    count[0] += D
    if not bool(torch.isfinite(H).all()):
        return LaplaceInit(False, "non-finite Hessian at the mode", evaluations=count[0])
    try:
        torch.linalg.cholesky(H)
    except RuntimeError:
        return LaplaceInit(False, "Hessian at the mode is not positive definite", evaluations=count[0])
    return LaplaceInit(True, "mode and Hessian found", mode, H, count[0])


def preconditioned_family(name: str, dim: int, init: LaplaceInit, **kwargs) -> nn.Module:
    r"""Build family ``name`` in coordinates whitened by the Laplace approximation ``init``.

    full-rank: :math:`u = \hat u + L w`, :math:`LL^\top = H^{-1}`, base :math:`N(0, I)` at the start, so q starts
    at the Laplace approximation. mean-field / low-rank: :math:`u = \hat u + a \odot w` with
    :math:`a_i = H_{ii}^{-1/2}`, the mean-field optimum for a Gaussian target. flow: :math:`a_i = (H^{-1})_{ii}^{1/2}`,
    the Laplace marginal sds, with a near-identity flow on top.
    """
    from ..families import Preconditioned, canonical_family, make_family

    H = init.precision
    mode = init.mode
    key = canonical_family(name)
    cov = torch.cholesky_inverse(torch.linalg.cholesky(H))
    if key == "fullrank":
        scale = torch.linalg.cholesky(cov)
    elif key == "flow":
        scale = cov.diagonal().sqrt()
    else:
        scale = H.diagonal().rsqrt()
    kwargs.setdefault("init_scale", 1.0) if key != "flow" else None
    base = make_family(name, dim, **kwargs)
    return Preconditioned(base, mode, scale)
