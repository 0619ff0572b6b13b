r"""Pathfinder (Zhang, Carpenter, Gelman & Vehtari, JMLR 2022, arXiv:2108.03782): Gaussian approximations
along an L-BFGS path, the one with the highest ELBO kept; several paths combined by importance resampling.

::

    L-BFGS on -log p from u0 (optim/lbfgs.py: lbfgs_path)        -> iterates x_0..x_L, gradients g_l
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

::

    init(u0) -> PathsState                                the starts: u0, then U(-2, 2) points (a fixed generator)
    step(state, log_density, options) -> (state, PathInfo)  one L-BFGS path and its best Gaussian
    run_paths(log_density, u0, options, prune)           every path (pruned: later paths stop in the first's basin)
    run(model, family, objective, options, config, ...)  the method -> MethodRun (q: the paths' equal mixture)

Shapes: positions and gradients ``(L+1, D)``; :math:`\beta` ``(D, 2J)``, :math:`\gamma` ``(2J, 2J)``.
Cost: per path, L-BFGS's gradient evaluations (about 1.1 per iteration) plus :math:`O(L D J^2)` linear algebra
and ``L·K`` density evaluations without gradients (one batched call); I paths cost I times that.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from ...families import DiagPlusLowRank, DiagPlusLowRankNormal, MixtureFamily
from ...utils.progress_bars import track
from ..config import FitConfig, check_int
from ..draw_stream import CHUNK_ELEMENTS
from ..initialization import start
from ..lbfgs import LBFGSPath, lbfgs_path
from ..result import MethodRun
from ..routing import MethodOptions, gaussian_family

__all__ = ["START_OPTIONS", "Options", "PathInfo", "PathfinderOptions", "PathfinderState", "PathsState", "approximate", "family_options",
           "init", "inverse_hessian_factors", "iter_path_factors", "path_factors", "run", "run_paths",
           "step"]  # fmt: skip

HISTORY = 6  # J, pairs kept (the paper's default)
ELBO_DRAWS = 16  # K, draws per ELBO estimate along the path (the paper: 5)
NUM_PATHS = 4  # I


@dataclass(frozen=True)
class PathfinderOptions(MethodOptions):
    """Pathfinder's settings.

    Attributes:
        num_paths: L-BFGS paths, :math:`I` (1 = single-path Pathfinder).
        history: pairs kept for the inverse-Hessian estimate, :math:`J`.
        elbo_draws: draws per ELBO estimate along a path, :math:`K`.
        max_steps: cap on the L-BFGS iterations of each path (a path usually stops well before, at the mode).
    """

    method: ClassVar[str] = "pathfinder"
    num_paths: int = NUM_PATHS
    history: int = HISTORY
    elbo_draws: int = ELBO_DRAWS
    max_steps: int = 10_000

    def __post_init__(self):
        for name in ("num_paths", "history", "elbo_draws", "max_steps"):
            check_int(name, getattr(self, name), 1)


Options = PathfinderOptions
# the start of auto and of low-rank BaM: four paths, 8 draws per ELBO estimate, at most 1200 L-BFGS iterations each
START_OPTIONS = PathfinderOptions(num_paths=4, history=6, elbo_draws=8, max_steps=1200)


def family_options(family: str | None) -> frozenset[str]:
    """None: Pathfinder's q is its own mixture of diagonal-plus-rank-2J Gaussians."""
    return frozenset()


def resolve_family(family, dim: int, options: dict, objective):
    """The Gaussian the user wants (``"fullrank"`` or ``"lowrank"``; Pathfinder's own is always diagonal plus
    rank at most 2·``history``): a label for the summary."""
    return gaussian_family(family, "pathfinder", dim)


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
    columns of ``S_l, Z_l`` ``(D, m)``, oldest first (``m`` may be 0 early on). A list; :func:`iter_path_factors`
    yields them one at a time (memory O(history D) instead of O(L history D))."""
    return list(iter_path_factors(path, history))


def iter_path_factors(path: LBFGSPath, history: int = HISTORY):
    """:func:`path_factors`, one iterate at a time."""
    x, g = path.x, path.grad
    D = x.shape[1]
    alpha = torch.ones(D, dtype=x.dtype, device=x.device)
    S: list[Tensor] = []
    Z: list[Tensor] = []
    for l in range(1, x.shape[0]):
        s, z = x[l] - x[l - 1], g[l - 1] - g[l]  # z = grad f_l - grad f_{l-1} with f = -log p
        if (s @ z).item() > 2.2e-16 * z.norm().item():
            alpha = _next_alpha(alpha, s, z)
            first = max(0, len(S) - (history - 1))
            S, Z = [*S[first:], s], [*Z[first:], z]
        empty = x.new_zeros(D, 0)
        yield alpha, torch.stack(S, 1) if S else empty, torch.stack(Z, 1) if Z else empty


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
    usable approximation (a path of one point, or every covariance estimate singular). The iterates are taken
    in groups of about ``CHUNK_ELEMENTS / (K D)`` (their draws in one batched density call), keeping only the best
    so far: memory O(CHUNK_ELEMENTS + history D), whatever the path's length."""
    group = max(1, CHUNK_ELEMENTS // (num_draws * path.x.shape[1]))
    all_elbos = torch.full((len(path) - 1,), -math.inf, dtype=torch.float64)
    best, best_elbo, evaluated = None, -math.inf, 0
    cands: list = []

    def flush():
        nonlocal best, best_elbo, evaluated
        zs, lqs = zip(*(c[1].rsample_and_log_prob((num_draws,)) for c in cands))
        z, lq = torch.stack(zs), torch.stack(lqs)  # (n, K, D), (n, K)
        lp = _batched(log_density, z.reshape(-1, z.shape[-1])).reshape(lq.shape)
        lw = (lp.double() - lq.double()).nan_to_num(nan=-math.inf, posinf=-math.inf)
        elbos = lw.mean(1)
        all_elbos[torch.tensor([c[0] - 1 for c in cands])] = elbos
        i = int(elbos.argmax())
        if best is None or elbos[i].item() > best_elbo:  # the first of equal maxima, as argmax over all
            best, best_elbo = cands[i], elbos[i].item()
        evaluated += z.shape[0] * z.shape[1]
        cands.clear()

    for l, (alpha, S, Z) in enumerate(iter_path_factors(path, history), start=1):
        try:
            beta, gamma = inverse_hessian_factors(alpha, S, Z)
            x, g = path.x[l], path.grad[l]
            mu = x + alpha * g + beta @ (gamma @ (beta.T @ g))
            q = DiagPlusLowRankNormal.from_factors(mu, alpha, beta, gamma)
        except (RuntimeError, torch.linalg.LinAlgError):  # a singular R or a non-PD estimate: skip this iterate
            continue
        if bool(torch.isfinite(mu).all()):
            cands.append((l, q, alpha, beta, gamma))
        if len(cands) >= group:
            flush()
    if cands:
        flush()
    if best is None:
        raise ValueError("Pathfinder: no usable Gaussian approximation along the L-BFGS path")
    l, q, alpha, beta, gamma = best
    return PathfinderState(q, path.x[l], path.grad[l], alpha, beta, gamma, best_elbo, all_elbos, l, evaluated)


def _batched(log_density, u: Tensor, chunk: int = 4096) -> Tensor:
    return torch.cat([log_density(u[i : i + chunk]) for i in range(0, u.shape[0], chunk)])


def _family_for(state: PathfinderState) -> DiagPlusLowRank:
    q = state.q
    return DiagPlusLowRank(q.loc, q.alpha, q.Q, q.L)


@dataclass
class PathsState:
    """The paths so far: the starts' generator, the density evaluations counted (``count[0]``), each path's best
    Gaussian (``states``, usable ones, in path order), every path and how many were stopped early."""

    u0: Tensor
    generator: torch.Generator
    count: list[int] = field(default_factory=lambda: [0])
    states: list[PathfinderState] = field(default_factory=list)
    paths: list[LBFGSPath] = field(default_factory=list)
    pruned: int = 0
    started: int = 0


@dataclass(frozen=True)
class PathInfo:
    """One path: its L-BFGS iterations (-1 when L-BFGS failed), whether it stopped in the first path's basin,
    and whether it gave a usable Gaussian."""

    iterations: int
    pruned: bool
    usable: bool


def init(u0: Tensor) -> PathsState:
    """No path yet; starts: ``u0``, then U(-2, 2) points from the fixed generator of
    :func:`~varinf.optim.laplace.find_modes` (seeded fits stay reproducible)."""
    return PathsState(u0, torch.Generator().manual_seed(0))


def step(
    state: PathsState, log_density, options: PathfinderOptions, prune: bool = False
) -> tuple[PathsState, PathInfo]:
    r"""One more path: L-BFGS from the next start, then :func:`approximate` on it.

    With ``prune``, a later path stops as soon as it enters the typical set of the first path's Gaussian
    (Mahalanobis :math:`d^2 < D + 4\sqrt{2D}`): it is climbing into the same basin, so finishing it would only
    repeat the first path (it is not approximated). Paths that end elsewhere run to the end, so a higher mode
    is still found."""
    D = state.u0.numel()
    first = state.started == 0
    begin = state.u0 if first else (torch.rand(D, generator=state.generator) * 4 - 2).to(state.u0)
    state.started += 1
    stop = _same_basin(state.states[0].q, D) if prune and state.states else None
    hit = [False]
    rule = None if stop is None else (lambda x, lp, stop=stop, hit=hit: hit.__setitem__(0, stop(x)) or hit[0])
    try:
        p = lbfgs_path(log_density, begin, options.max_steps, restarts=0, count=state.count, stop=rule)
    except (RuntimeError, ValueError):  # a NaN inside the line search, or the model refusing a point
        return state, PathInfo(-1, False, False)
    state.paths.append(p)
    if hit[0]:
        state.pruned += 1
        return state, PathInfo(len(p) - 1, True, False)
    try:
        state.states.append(approximate(log_density, p, options.history, options.elbo_draws))
    except ValueError:
        return state, PathInfo(len(p) - 1, False, False)
    return state, PathInfo(len(p) - 1, False, True)


def run_paths(log_density, u0: Tensor, options: PathfinderOptions, prune: bool = False) -> PathsState:
    """``options.num_paths`` paths (:func:`step`); the usable states sorted best ELBO first."""
    state = init(u0)
    for _ in track(range(options.num_paths), "Pathfinder", unit="paths"):
        state, _ = step(state, log_density, options, prune)
    state.states.sort(key=lambda st: -st.elbo)
    return state


def _same_basin(q: DiagPlusLowRankNormal, D: int):
    ref = q.log_prob(q.loc)
    thresh = D + 4 * math.sqrt(2 * D)
    return lambda x: bool(-2 * (q.log_prob(x) - ref) < thresh)


def run(model, family, objective, options: PathfinderOptions, config: FitConfig, family_options: dict) -> MethodRun:
    """Multi-path Pathfinder (``num_paths``; 1 = single-path). ``family`` only labels the Gaussian the user wants;
    ``objective`` is not used (Pathfinder maximizes the ELBO by search). The estimates ``varinf.fit`` reports are
    importance-resampled (PSIS) when k-hat allows."""
    t0 = time.perf_counter()
    s = start(model, config, laplace=False)
    model = s.model
    paths = run_paths(model.log_density, s.u0, options)
    if not paths.states:
        raise ValueError(f"{model.name}: Pathfinder found no usable Gaussian approximation on any path")
    fam = MixtureFamily([_family_for(st) for st in paths.states])
    lengths = ", ".join(str(len(p) - 1) for p in paths.paths)
    elbos = [st.elbo for st in paths.states]
    return MethodRun(
        model=model, family=fam.to(device=s.device, dtype=s.dtype), objective=objective,
        elbo_trace=torch.tensor(elbos, dtype=torch.float64), converged=True,
        convergence_reason=f"{len(paths.states)} path(s) of {lengths} L-BFGS iterations; best ELBO {elbos[0]:.3f}",
        num_steps=sum(len(p) - 1 for p in paths.paths), grad_evals=paths.count[0], wall_time=time.perf_counter() - t0,
        method="pathfinder", family_name=family, density_evals=sum(st.density_evaluations for st in paths.states),
        report="psis", options=options,
    )  # fmt: skip
