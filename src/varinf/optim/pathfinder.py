r"""Pathfinder (Zhang, Carpenter, Gelman & Vehtari, JMLR 2022, arXiv:2108.03782): Gaussian approximations
along an L-BFGS path, the one with the highest ELBO kept; several paths combined by importance resampling.

::

    L-BFGS on -log p from u0 (optim/laplace.py: lbfgs_path)        -> iterates x_0..x_L, gradients g_l
      -> at each x_l: inverse-Hessian estimate H_l = diag(alpha_l) + beta_l gamma_l beta_l^T  (last J pairs)
         q_l = N(x_l + H_l g_l, H_l)                                  (a Newton step from x_l)
      -> ELBO_l from K draws of q_l (all L·K draws in one batched density call, no gradients)
      -> single path: q = q_{l*}, l* = argmax ELBO_l
    multi-path: I paths from zeros and I-1 U(-2, 2) starts -> q = (1/I) sum_i q_i (varinf.fit's PSIS then
    importance-resamples draws of this mixture: Pareto-smoothed weights p/q, Zhang et al. §2.4)

The diagonal :math:`\alpha_l` follows Zhang et al.'s Algorithm 3 (updated only by pairs with
:math:`s^\top z > \epsilon \|z\|`), and :math:`H_l` is the compact L-BFGS form of Byrd, Nocedal & Schnabel
(1994) built from the last J accepted pairs :math:`s = x_{l} - x_{l-1}`, :math:`z = \nabla f_{l} - \nabla f_{l-1}`
(:math:`f = -\log p`). :math:`H_l` is never formed densely: q_l is a :class:`~varinf.families.DiagPlusLowRankNormal`.

Shapes: positions and gradients ``(L+1, D)``; :math:`\beta` ``(D, 2J)``, :math:`\gamma` ``(2J, 2J)``.
Cost: per path, L-BFGS's gradient evaluations (about 1.1 per iteration) plus :math:`O(L D J^2)` linear algebra
and ``L·K`` density evaluations without gradients (one batched call); I paths cost I times that.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from ..families import DiagPlusLowRank, DiagPlusLowRankNormal, MixtureFamily, canonical_family, family_label
from ..models import Model
from .config import FitConfig
from .laplace import LBFGSPath, lbfgs_path
from .result import FitResult, direct_result
from .start import start

__all__ = ["PathfinderState", "approximate", "inverse_hessian_factors", "path_factors", "pathfinder", "run_paths"]

HISTORY = 6  # J, pairs kept (the paper's default)
ELBO_DRAWS = 16  # K, draws per ELBO estimate along the path (the paper: 5)
NUM_PATHS = 4  # I


@dataclass
class PathfinderState:
    r"""The best Gaussian on one L-BFGS path.

    Attributes:
        q: :math:`N(\mu, \mathrm{diag}(\alpha) + \beta\gamma\beta^\top)` at the chosen iterate.
        position, grad: ``(D,)`` the iterate :math:`x_{l^*}` and :math:`\nabla\log p(x_{l^*})`.
        alpha, beta, gamma: the inverse-Hessian factors there.
        elbo: its ELBO estimate (nats); ``elbos``: ``(L,)`` the estimates along the path (-inf where unusable).
        index: :math:`l^*` (1-based iterate number).
        density_evaluations: density evaluations (no gradients) spent on the ELBO estimates.
    """

    q: DiagPlusLowRankNormal
    position: Tensor
    grad: Tensor
    alpha: Tensor
    beta: Tensor
    gamma: Tensor
    elbo: float
    elbos: Tensor
    index: int
    density_evaluations: int


def _next_alpha(alpha: Tensor, s: Tensor, z: Tensor) -> Tensor:
    """Zhang et al. Algorithm 3: the diagonal that matches the new pair's curvature along s and z."""
    a = (alpha * z.square()).sum()
    b = z @ s
    c = (s.square() / alpha).sum()
    inv = a / (b * alpha) + z.square() / b - a * s.square() / (b * c * alpha.square())
    new = 1.0 / inv
    return torch.where(torch.isfinite(new) & (new > 0), new, alpha)


def path_factors(path: LBFGSPath, history: int = HISTORY):
    """For each iterate l = 1..L: ``(alpha_l, S_l, Z_l)`` with the last ``history`` accepted pairs as the
    columns of ``S_l, Z_l`` ``(D, m)``, oldest first (``m`` may be 0 early on)."""
    x, g = path.x, path.grad
    D = x.shape[1]
    alpha = torch.ones(D, dtype=x.dtype, device=x.device)
    S: list[Tensor] = []
    Z: list[Tensor] = []
    out = []
    for l in range(1, x.shape[0]):
        s, z = x[l] - x[l - 1], g[l - 1] - g[l]  # z = grad f_l - grad f_{l-1} with f = -log p
        if (s @ z).item() > 2.2e-16 * z.norm().item():
            alpha = _next_alpha(alpha, s, z)
            first = max(0, len(S) - (history - 1))
            S, Z = [*S[first:], s], [*Z[first:], z]
        empty = x.new_zeros(D, 0)
        out.append((alpha, torch.stack(S, 1) if S else empty, torch.stack(Z, 1) if Z else empty))
    return out


def inverse_hessian_factors(alpha: Tensor, S: Tensor, Z: Tensor) -> tuple[Tensor, Tensor]:
    r""":math:`(\beta, \gamma)` with :math:`H = \mathrm{diag}(\alpha) + \beta\gamma\beta^\top` the L-BFGS inverse
    Hessian from initial matrix :math:`\mathrm{diag}(\alpha)` and pairs ``S``, ``Z`` ``(D, m)`` (Byrd, Nocedal &
    Schnabel 1994, eq. 3.1): :math:`\beta = [\mathrm{diag}(\alpha)Z,\ S]`,
    :math:`\gamma = \begin{pmatrix}0 & -R^{-1}\\ -R^{-\top} & R^{-\top}(E + Z^\top \mathrm{diag}(\alpha) Z)R^{-1}\end{pmatrix}`,
    :math:`R = \mathrm{triu}(S^\top Z)`, :math:`E = \mathrm{diag}(S^\top Z)`."""
    m = S.shape[1]
    StZ = S.T @ Z
    R = torch.triu(StZ)
    eye = torch.eye(m, dtype=S.dtype, device=S.device)
    Rinv = torch.linalg.solve_triangular(R, eye, upper=True)
    aZ = alpha[:, None] * Z
    lower = Rinv.T @ (torch.diag(StZ.diagonal()) + Z.T @ aZ) @ Rinv
    gamma = torch.cat([torch.cat([torch.zeros_like(R), -Rinv], 1), torch.cat([-Rinv.T, lower], 1)], 0)
    return torch.cat([aZ, S], 1), gamma


@torch.no_grad()
def approximate(log_density, path: LBFGSPath, history: int = HISTORY, num_draws: int = ELBO_DRAWS) -> PathfinderState:
    """The Gaussian with the highest estimated ELBO along ``path`` (see the module docstring).

    ``log_density`` maps ``(S, D) -> (S,)`` (no gradients are taken). Raises ``ValueError`` when no iterate gives a
    usable approximation (a path of one point, or every covariance estimate singular)."""
    cands = []
    for l, (alpha, S, Z) in enumerate(path_factors(path, history), start=1):
        try:
            beta, gamma = inverse_hessian_factors(alpha, S, Z)
            x, g = path.x[l], path.grad[l]
            mu = x + alpha * g + beta @ (gamma @ (beta.T @ g))
            q = DiagPlusLowRankNormal.from_factors(mu, alpha, beta, gamma)
        except (RuntimeError, torch.linalg.LinAlgError):  # a singular R or a non-PD estimate: skip this iterate
            continue
        if bool(torch.isfinite(mu).all()):
            cands.append((l, q, alpha, beta, gamma))
    if not cands:
        raise ValueError("Pathfinder: no usable Gaussian approximation along the L-BFGS path")
    zs, lqs = zip(*(c[1].rsample_and_log_prob((num_draws,)) for c in cands))
    z, lq = torch.stack(zs), torch.stack(lqs)  # (n, K, D), (n, K)
    lp = _batched(log_density, z.reshape(-1, z.shape[-1])).reshape(lq.shape)
    lw = (lp.double() - lq.double()).nan_to_num(nan=-math.inf, posinf=-math.inf)
    elbos = lw.mean(1)
    best = int(elbos.argmax())
    l, q, alpha, beta, gamma = cands[best]
    all_elbos = torch.full((len(path) - 1,), -math.inf, dtype=torch.float64)
    all_elbos[torch.tensor([c[0] - 1 for c in cands])] = elbos
    return PathfinderState(q, path.x[l], path.grad[l], alpha, beta, gamma, elbos[best].item(), all_elbos, l,
                           z.shape[0] * z.shape[1])  # fmt: skip


def _batched(log_density, u: Tensor, chunk: int = 4096) -> Tensor:
    return torch.cat([log_density(u[i : i + chunk]) for i in range(0, u.shape[0], chunk)])


def _family_for(state: PathfinderState) -> DiagPlusLowRank:
    q = state.q
    return DiagPlusLowRank(q.loc, q.alpha, q.Q, q.L)


def run_paths(log_density, u0: Tensor, num_paths: int = NUM_PATHS, history: int = HISTORY,
              num_draws: int = ELBO_DRAWS, max_iter: int = 300, prune: bool = False):  # fmt: skip
    r"""L-BFGS from ``u0`` and ``num_paths - 1`` U(-2, 2) starts (the fixed generator of
    :func:`~varinf.optim.laplace.find_modes`), :func:`approximate` on each.

    With ``prune``, a later path stops as soon as it enters the typical set of the first path's Gaussian
    (Mahalanobis :math:`d^2 < D + 4\sqrt{2D}`): it is climbing into the same basin, so finishing it would only
    repeat the first path (it is not approximated). Paths that end elsewhere run to the end, so a higher mode
    is still found. Returns ``(states, paths, grad_evals, pruned)``: the usable states (best ELBO first), all
    paths, the gradient evaluations spent and how many paths were stopped early."""
    count = [0]
    D = u0.numel()
    gen = torch.Generator().manual_seed(0)
    states, paths, pruned = [], [], 0
    for i in range(num_paths):
        start = u0 if i == 0 else (torch.rand(D, generator=gen) * 4 - 2).to(u0)
        stop = _same_basin(states[0].q, D) if prune and states else None
        hit = [False]
        rule = None if stop is None else (lambda x, lp, stop=stop, hit=hit: hit.__setitem__(0, stop(x)) or hit[0])
        try:
            p = lbfgs_path(log_density, start, max_iter, count=count, stop=rule)
        except (RuntimeError, ValueError):  # a NaN inside the line search, or the model refusing a point
            continue
        paths.append(p)
        if hit[0]:
            pruned += 1
            continue
        try:
            states.append(approximate(log_density, p, history, num_draws))
        except ValueError:
            continue
    states.sort(key=lambda st: -st.elbo)
    return states, paths, count[0], pruned


def _same_basin(q: DiagPlusLowRankNormal, D: int):
    ref = q.log_prob(q.loc)
    thresh = D + 4 * math.sqrt(2 * D)
    return lambda x: bool(-2 * (q.log_prob(x) - ref) < thresh)


def pathfinder(model: Model, family, objective, config: FitConfig, family_kwargs: dict) -> FitResult:
    """Multi-path Pathfinder (``num_paths`` from ``family_kwargs``, default 4; 1 = single-path).

    ``family`` names the Gaussian the user wants (``"fullrank"`` or ``"lowrank"``); Pathfinder's own is always
    diagonal plus rank ≤ 2·``history``. ``objective`` is not used (Pathfinder maximizes the ELBO by search).
    The estimates ``varinf.fit`` reports are importance-resampled (PSIS) when k-hat allows."""
    t0 = time.perf_counter()
    label = _gaussian_label(family, "pathfinder")  # a family it cannot fit is the first thing to say
    kw = dict(family_kwargs)
    num_paths, history = int(kw.pop("num_paths", NUM_PATHS)), int(kw.pop("history", HISTORY))
    num_draws = int(kw.pop("elbo_draws", ELBO_DRAWS))
    kw.pop("rank", None)
    if kw:
        raise TypeError(f"unexpected keyword arguments for pathfinder: {sorted(kw)}")
    if num_paths < 1 or history < 1 or num_draws < 1:
        raise ValueError("num_paths, history and elbo_draws must be >= 1")
    s = start(model, config, laplace=False)
    model = s.model
    states, paths, grad_evals, _ = run_paths(model.log_density, s.u0, num_paths, history, num_draws,
                                             max(config.max_steps // 4, 10))  # fmt: skip
    if not states:
        raise ValueError(f"{model.name}: Pathfinder found no usable Gaussian approximation on any path")
    density_evals = sum(st.density_evaluations for st in states)
    fam = MixtureFamily([_family_for(st) for st in states])
    lengths = ", ".join(str(len(p) - 1) for p in paths)
    elbos = [st.elbo for st in states]
    return direct_result(
        model, fam.to(device=s.device, dtype=s.dtype), objective, elbos, window_means=elbos, converged=True,
        reason=f"{len(states)} path(s) of {lengths} L-BFGS iterations; best ELBO {states[0].elbo:.3f}",
        num_steps=sum(len(p) - 1 for p in paths), grad_evals=grad_evals, t0=t0, method="pathfinder",
        family_name=label, density_evals=density_evals, report="psis",
    )


def _gaussian_label(family, method: str) -> str:
    label = family_label(family)
    if isinstance(family, str) and canonical_family(family) in ("fullrank", "lowrank"):
        return label
    if not isinstance(family, str):
        raise ValueError(f"{method} builds its own Gaussian: name it, family='fullrank' or 'lowrank', instead of "
                         f"passing a {type(family).__name__} module (method='advi' fits a given module)")  # fmt: skip
    raise ValueError(
        f"{method} fits a Gaussian with a full or low-rank covariance: use family='fullrank' or 'lowrank' "
        f"(got {label!r}; method='auto' handles the other families)"
    )
