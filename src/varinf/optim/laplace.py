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

__all__ = ["LBFGSPath", "LaplaceInit", "find_modes", "laplace_init", "lbfgs_path", "preconditioned_family"]


@dataclass
class LBFGSPath:
    r"""The iterates of one L-BFGS run on :math:`-\log p` (what Pathfinder needs; Zhang et al. 2022, §2).

    Attributes:
        x: ``(L+1, D)`` accepted iterates, the start first.
        log_p: ``(L+1,)`` :math:`\log p(x_l)` (nats).
        grad: ``(L+1, D)`` :math:`\nabla \log p(x_l)` (gradient of the log density, not of the loss).
    """

    x: Tensor
    log_p: Tensor
    grad: Tensor

    def __len__(self) -> int:
        return self.x.shape[0]


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


class _Evaluator:
    """``-log p`` and its gradient at ``u`` for L-BFGS, remembering the last few points so that re-evaluating
    an accepted line-search point (torch's L-BFGS does at the start of each ``step``) costs nothing."""

    def __init__(self, log_density, count: list[int]):
        from .stationarity import closed_form

        self.log_density, self.count = log_density, count
        self.closed = closed_form(log_density)  # value and gradient without autograd, where the model has them
        self.cache: list[tuple[Tensor, float, Tensor]] = []

    def __call__(self, u: Tensor) -> tuple[float, Tensor]:
        for x, f, g in self.cache:
            if torch.equal(x, u):
                return f, g
        v = u.detach().clone().requires_grad_(True)
        both = self.closed(v.detach()[None]) if self.closed is not None else None
        lp = self.log_density(v[None])[0] if both is None else both[0][0]
        self.count[0] += 1
        if not torch.isfinite(lp):
            # make the line search back off instead of propagating NaN into the history
            f, g = math.inf, torch.zeros_like(v)
        else:
            (g,) = torch.autograd.grad(lp, v) if both is None else (both[1][0],)
            f, g = -lp.item(), -g
        self.cache = [*self.cache[-7:], (u.detach().clone(), f, g)]
        return f, g


class _LBFGS:
    """The iteration of ``torch.optim.LBFGS(lr=1, max_iter=1, tolerance_change=0, line_search_fn="strong_wolfe")``
    on a flat tensor, one :meth:`step` per call, with the same arithmetic (so the same iterates). Written out
    because building any ``torch.optim.Optimizer`` imports ``torch._dynamo`` (its methods are wrapped in
    ``torch._disable_dynamo``): about 1.6 s of CPU, several times a small fit's own cost. The line search is
    torch's ``_strong_wolfe``."""

    def __init__(self, history_size: int = 20, max_eval: int = 26, tol_grad: float = 1e-7):
        self.history_size, self.max_eval, self.tol_grad = history_size, max_eval, tol_grad
        self.n_iter, self.d, self.t, self.H_diag, self.prev_g = 0, None, None, 1, None
        self.old_dirs: list[Tensor] = []
        self.old_stps: list[Tensor] = []
        self.ro: list[Tensor] = []
        self.al: list = [None] * history_size

    def step(self, x: Tensor, evaluate) -> Tensor:
        """The next iterate from ``x``; ``evaluate(x) -> (f, grad f)`` (``f = -log p``, a float)."""
        from torch.optim.lbfgs import _strong_wolfe

        f, g = evaluate(x)
        if g.abs().max() <= self.tol_grad:
            return x
        self.n_iter += 1
        if self.n_iter == 1:
            d = g.neg()
            self.old_dirs, self.old_stps, self.ro, self.H_diag = [], [], [], 1
        else:
            y = g.sub(self.prev_g)
            s = self.d.mul(self.t)
            ys = y.dot(s)
            if ys > 1e-10:
                if len(self.old_dirs) == self.history_size:
                    self.old_dirs.pop(0)
                    self.old_stps.pop(0)
                    self.ro.pop(0)
                self.old_dirs.append(y)
                self.old_stps.append(s)
                self.ro.append(1.0 / ys)
                self.H_diag = ys / y.dot(y)
            al = self.al
            q = g.neg()
            for i in range(len(self.old_dirs) - 1, -1, -1):  # the two-loop recursion
                al[i] = self.old_stps[i].dot(q) * self.ro[i]
                q.add_(self.old_dirs[i], alpha=-al[i])
            d = r = torch.mul(q, self.H_diag)
            for i in range(len(self.old_dirs)):
                be_i = self.old_dirs[i].dot(r) * self.ro[i]
                r.add_(self.old_stps[i], alpha=al[i] - be_i)
        self.prev_g = g.clone(memory_format=torch.contiguous_format)
        t = min(1.0, 1.0 / g.abs().sum()) if self.n_iter == 1 else 1.0
        gtd = g.dot(d)
        self.d, self.t = d, t
        if gtd > 0.0:  # not a descent direction (tolerance_change = 0)
            return x
        def along(x0, t, d):  # a fresh gradient tensor, as torch's flattening of .grad gives
            f_t, g_t = evaluate(x0.add(d, alpha=t))
            return f_t, g_t.clone()

        _, _, t, _ = _strong_wolfe(along, x, t, d, f, g, gtd, max_ls=self.max_eval - 1)
        self.t = t
        return x.add(d, alpha=t)


def lbfgs_path(log_density, u0: Tensor, max_iter: int = 300, restarts: int = 3, tol_rel_obj: float = 1e-12,
               count: list[int] | None = None, stop=None) -> LBFGSPath:  # fmt: skip
    """Maximize ``log_density`` (``(1, D) -> (1,)``) by L-BFGS from ``u0`` and return the path of iterates.

    torch's L-BFGS iteration (strong-Wolfe line search, 20 pairs of memory; :class:`_LBFGS`), one step per iteration so that every
    accepted iterate is recorded; at most ``(restarts + 1) max_iter`` iterations. Stops when the relative
    change of the objective falls below ``tol_rel_obj``, the max |gradient| below 1e-7, the line search makes no
    progress, the density is not finite, or ``stop(x, log_p)`` (called at every accepted iterate) says so.
    ``count[0]`` accumulates density (+ gradient) evaluations, line-search ones included.
    """
    count = [0] if count is None else count
    ev = _Evaluator(log_density, count)
    tol_grad = 1e-7
    opt = _LBFGS(history_size=20, max_eval=26, tol_grad=tol_grad)
    u = u0.detach().clone().reshape(-1)
    f0, g0 = ev(u)
    xs, fs, gs = [u], [f0], [g0]
    for _ in range((restarts + 1) * max_iter):
        if not math.isfinite(fs[-1]) or gs[-1].abs().max().item() <= tol_grad:
            break
        x = opt.step(xs[-1], ev)
        if torch.equal(x, xs[-1]):  # no progress along the search direction
            break
        f, g = ev(x)
        if not math.isfinite(f):
            break
        xs.append(x)
        fs.append(f)
        gs.append(g)
        if abs(fs[-2] - f) <= tol_rel_obj * max(abs(f), abs(fs[-2]), 1.0):
            break
        if stop is not None and stop(x, -f):
            break
    return LBFGSPath(torch.stack(xs), -torch.tensor(fs, dtype=torch.float64), -torch.stack(gs))


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
