r"""L-BFGS that records its path: the iterates, log densities and gradients Pathfinder and the Laplace start use.

:func:`lbfgs_path` maximizes a log density with torch's L-BFGS iteration (strong-Wolfe line search, 20 pairs of
memory), one step per iteration so that every accepted iterate is recorded. The iteration is
``torch.optim.LBFGS``'s transcribed in :class:`_LBFGS` (same arithmetic, so the same iterates; tested), because
building any ``torch.optim.Optimizer`` imports ``torch._dynamo``: about 1.6 s of CPU, several times a small fit's
own cost. The line search is torch's own (:func:`varinf.utils.torch_private.strong_wolfe`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..utils.torch_private import strong_wolfe
from .stationarity import closed_form

__all__ = ["LBFGSPath", "lbfgs_path"]


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


class _Evaluator:
    """``-log p`` and its gradient at ``u`` for L-BFGS, remembering the last few points so that re-evaluating
    an accepted line-search point (torch's L-BFGS does at the start of each ``step``) costs nothing."""

    def __init__(self, log_density, count: list[int]):
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

        _, _, t, _ = strong_wolfe(along, x, t, d, f, g, gtd, max_ls=self.max_eval - 1)
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
