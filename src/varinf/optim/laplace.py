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
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..families import Preconditioned, canonical_family, make_family
from .lbfgs import LBFGSPath, lbfgs_path

__all__ = ["LaplaceInit", "find_modes", "laplace_init", "preconditioned_family"]


@dataclass
class LaplaceInit:
    ok: bool
    reason: str
    mode: Tensor | None = None
    precision: Tensor | None = None  # H, (D, D)
    evaluations: int = 0
    paths: list[LBFGSPath] = field(default_factory=list)  # one per start, in the order tried


@dataclass
class _Mode:
    ok: bool
    reason: str
    mode: Tensor | None = None
    log_density: float = -math.inf
    path: LBFGSPath | None = None


def _find_mode(log_density, u0: Tensor, max_iter: int, restarts: int, count: list[int], tol_rel_obj: float) -> _Mode:
    """L-BFGS from ``u0``; ``count[0]`` accumulates density evaluations."""
    try:
        path = lbfgs_path(log_density, u0, max_iter, restarts, tol_rel_obj, count)
    except (RuntimeError, ValueError) as e:  # a NaN inside the line search, or the model refusing a point
        return _Mode(False, f"L-BFGS failed ({e})")
    mode, lp, g = path.x[-1], path.log_p[-1].item(), path.grad[-1]
    if not bool(torch.isfinite(mode).all()) or not math.isfinite(lp):
        return _Mode(False, "no finite mode (the density may grow without bound, e.g. a funnel)", path=path)
    grad_norm = g.abs().max().item()
    if grad_norm > 1e-3 * max(1.0, abs(lp)) ** 0.5:
        return _Mode(False, f"L-BFGS did not reach a stationary point (max |gradient| {grad_norm:.3g})", path=path)
    return _Mode(True, "mode found", mode.clone(), lp, path)


def find_modes(
    log_density,
    u0: Tensor,
    extra_starts: int = 0,
    generator: torch.Generator | None = None,
    max_iter: int = 300,
    restarts: int = 3,
    tol_rel_obj: float = 1e-12,
    count: list[int] | None = None,
) -> tuple[_Mode, list[LBFGSPath]]:
    """L-BFGS from ``u0`` and from ``extra_starts`` U(-2, 2) points (Stan's initialization): the best mode and
    every path (``u0``'s first).

    A mode found from ``u0`` is kept unless another is higher by more than 1e-6 |log p| + 1e-3 nats, so
    unimodal targets give exactly the single-start result. ``count[0]`` accumulates density evaluations."""
    count = [0] if count is None else count
    D = u0.numel()
    best = _find_mode(log_density, u0, max_iter, restarts, count, tol_rel_obj)
    paths = [best.path]
    for _ in range(extra_starts):
        start = (torch.rand(D, generator=generator) * 4 - 2).to(u0)
        other = _find_mode(log_density, start, max_iter, restarts, count, tol_rel_obj)
        paths.append(other.path)
        if other.ok and (not best.ok or other.log_density > best.log_density + 1e-6 * abs(best.log_density) + 1e-3):
            best = other
    return best, [p for p in paths if p is not None]


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

    With ``extra_starts`` > 0, L-BFGS also runs from that many U(-2, 2) points (:func:`find_modes`) and
    the highest mode wins; multimodal posteriors (HMMs, mixtures) otherwise land in whichever mode is downhill
    of ``u0``. At most ``(extra_starts + 1) (restarts + 1) 26 max_iter`` density evaluations (26 = one plus a
    line search's cap), plus D for the Hessian; a few dozen per start on posteriordb's models.
    """
    D = u0.numel()
    if D > max_dim:
        return LaplaceInit(False, f"dimension {D} > {max_dim}: Hessian not attempted")
    count = [0]
    best, paths = find_modes(log_density, u0, extra_starts, generator, max_iter, restarts, count=count)
    if not best.ok:
        return LaplaceInit(False, best.reason, evaluations=count[0], paths=paths)
    mode = best.mode
    H = -torch.autograd.functional.hessian(lambda x: log_density(x[None])[0], mode)
    H = 0.5 * (H + H.T)
    count[0] += D
    if not bool(torch.isfinite(H).all()):
        return LaplaceInit(False, "non-finite Hessian at the mode", evaluations=count[0], paths=paths)
    try:
        torch.linalg.cholesky(H)
    except RuntimeError:
        return LaplaceInit(False, "Hessian at the mode is not positive definite", evaluations=count[0], paths=paths)
    return LaplaceInit(True, "mode and Hessian found", mode, H, count[0], paths)


def preconditioned_family(name: str, dim: int, init: LaplaceInit, **kwargs) -> nn.Module:
    r"""Build family ``name`` in coordinates whitened by the Laplace approximation ``init``.

    full-rank: :math:`u = \hat u + L w`, :math:`LL^\top = H^{-1}`, base :math:`N(0, I)` at the start, so q starts
    at the Laplace approximation. mean-field / low-rank: :math:`u = \hat u + a \odot w` with
    :math:`a_i = H_{ii}^{-1/2}`, the mean-field optimum for a Gaussian target. flow: :math:`a_i = (H^{-1})_{ii}^{1/2}`,
    the Laplace marginal sds, with a near-identity flow on top.
    """
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
