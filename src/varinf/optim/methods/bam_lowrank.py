r"""Patch-step Batch-and-Match (pBaM): a low-rank-plus-diagonal Gaussian :math:`q = N(\mu, \Psi + \Lambda\Lambda^\top)`
fitted by score matching in time and memory linear in D (Modi, Cai & Saul, "Batch, match, and patch: low-rank
approximations for score-based variational inference", AISTATS 2025, PMLR 258, arXiv:2410.22292; BaM: Cai et al.
2024, arXiv:2402.14758). The match and the EM patch follow the authors' implementation (``gsmvi/pbam.py`` of
github.com/modichirag/GSM-VI: the same factored update, the "diana" form of the EM step).

::

    batch:  B draws z_b ~ q_t, their scores g_b = grad log p(z_b) (one batched call)
    match:  BaM's proximal update (methods/bam.py) in factored form. With U = Q Q^T, Q = [sqrt(lam) G_c^T,
            sqrt(lam/(1+lam)) gbar]  (D x (B+1)) and V = Psi + R R^T, R = [Lambda, sqrt(lam) Z_c^T,
            sqrt(lam/(1+lam)) (mu - zbar)]  (D x (k+B+1)), the push-through identity gives
                Sigma* = V - V Q M^-2 Q^T V,   M = I/2 + (I/4 + Q^T V Q)^(1/2)      ((B+1) x (B+1))
                mu*    = mu / (1+lam) + lam/(1+lam) (Sigma* gbar + zbar)
            (Sigma* is never formed: only Sigma* X for thin X and diag(Sigma*))
    patch:  factor-analysis EM fits Psi' + Lambda' Lambda'^T to Sigma* (the maximum-likelihood factor model of
            N(0, Sigma*), i.e. the minimizer of KL(N(0, Sigma*) || N(0, Psi' + Lambda' Lambda'^T))), warm-started
            at the current factors, until the factors change by less than EM_TOL. At convergence
            diag(Psi' + Lambda' Lambda'^T) = diag(Sigma*): the patch keeps the matched marginal variances.

Step size. BaM's schedule lam_t = lam0 D B / t moves fast, but the fixed point of an update with lam >> 1 is
that of "replace q by the batch's own match", whose mean is biased for a non-Gaussian target (measured on
posteriordb's nes2000: 0.95 posterior sds at lam = 10, 0.6 at 1, 0.04 at 0.1). So the run has phases: BaM's
schedule until q is stationary, then constant steps min(0.1, last step), then a tenth of that (each phase restarted
from the previous phase's average and run until stationary); it stops when a smaller step no longer moves the
average of q's means and log-sds by ``tol`` (at small lam the expected update vanishes exactly where
E_q[grad log p] = 0, the condition the ELBO's optimum satisfies for the mean). With B << D the speed does not
depend on lam (measured from 0.03 to D B on exact Gaussian hierarchies at D = 1,000: the same progress per
iteration), so the small constant steps cost no speed there.

::

    init(pf, rank) -> LowRankState                      Pathfinder's Gaussian patched into rank k (float64)
    step(state, score_fn, num_draws, lam) -> (state, used)   one batch, match, patch
    iterate(state, score_fn, num_draws, schedule)       BaM's schedule, then the constant-step phases
    run(model, options, config, rank)                   the method (``method="bam", family="lowrank"``; options:
                                                        the frozen ``BaMOptions``, validated before any work)
                                                        -> MethodRun
    ``method="auto"`` runs init -> iterate as its Gaussian stage for low rank above the full-rank threshold, up
    to ``PBAM_MAX`` dimensions (methods/auto.py; the ADVI polish takes over when pBaM ends on unusable updates)

Shapes: mu, Psi ``(D,)``, Lambda ``(D, k)``, a batch ``(B, D)``. Cost per iteration: B gradient evaluations in
one batched call, O(D (k+B)^2 + B^3) for the match and O(D k (k+B)) per EM step; memory O(D (k+B)).
Convergence: an iteration learns about B of the D directions, so pBaM needs a few times D/B iterations per
phase (about 5-7 D gradient evaluations in all from Pathfinder's start, measured on exact Gaussian hierarchies at
D = 1,000 and 3,000: benchmarks/high_dim.py), hence ``PBAM_MAX``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ...advice import render
from ...errors import ConvergenceWarning, FitError, warn
from ...families import LowRank
from ...utils.progress_bars import track
from ..config import FitConfig
from ..initialization import start
from ..result import MethodRun
from ..stationarity import ParameterStationarity, Schedule, scores
from . import pathfinder

if TYPE_CHECKING:
    from .bam import BaMOptions

__all__ = [
    "MAX_MOVE",
    "PBAM_MAX",
    "UNUSABLE",
    "LowRankState",
    "batch_size",
    "breakdown",
    "init",
    "iterate",
    "lowrank_module",
    "patch",
    "run",
    "step",
    "unusable",
]

PBAM_MAX = 5000  # dimensions up to which method="auto" fits a low-rank Gaussian by pBaM (above: an ADVI polish)

EM_STEPS = 10  # at most, per patch (warm-started: the EM continues from one iteration to the next)
EM_TOL = 1e-4  # relative change of Psi and Lambda that ends the EM
PHASES = 2  # phases of constant, ten times smaller steps after BaM's schedule (see the module docstring)
PHASE_STEP = 0.1  # the first constant step (at most)
PSI_FLOOR = 1e-6  # Psi >= this share of each marginal variance: I + Lambda^T Psi^-1 Lambda stays well conditioned
MAX_FAILURES = 20  # numerically unusable updates in a row (each halving the step) that end the run
MAX_MOVE = 1e3  # an update that moves a mean by more sds than this, or grows a variance by more than its square,
# is taken back like an unusable one (extreme scores from q's tail, e.g. 1e129 in a funnel, throw the mean to 1e10)
UNUSABLE = "updates in a row were numerically unusable"  # the reason :func:`iterate` gives when they did
_LOG_2PI = math.log(2 * math.pi)


@dataclass
class LowRankState:
    """q = N(loc, diag(psi) + lam lam^T) (float64), iteration count, gradient evaluations and the ELBO estimate
    of each iteration's q from its own batch (nats)."""

    loc: Tensor
    psi: Tensor
    lam: Tensor
    t: int = 0
    grad_evals: int = 0
    trace: list[float] = field(default_factory=list)

    @property
    def variance(self) -> Tensor:
        return self.psi + self.lam.square().sum(1)

    def entropy(self) -> float:
        """H[q] = (D log(2 pi e) + sum log psi + log det(I + lam^T Psi^-1 lam)) / 2, in O(D k^2)."""
        k = self.lam.shape[1]
        inner = torch.eye(k, dtype=self.lam.dtype, device=self.lam.device) + (self.lam.T / self.psi) @ self.lam
        logdet = self.psi.log().sum() + torch.linalg.slogdet(inner)[1]
        return 0.5 * (self.loc.numel() * (1 + _LOG_2PI) + logdet.item())

    def sample(self, n: int) -> Tensor:
        eps = torch.randn(n, self.loc.numel(), dtype=self.loc.dtype, device=self.loc.device)
        xi = torch.randn(n, self.lam.shape[1], dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + self.psi.sqrt() * eps + xi @ self.lam.T


def batch_size(rank: int) -> int:
    """Draws per iteration for rank k: 2(k + 1), between 8 and 64."""
    return max(8, min(2 * rank + 2, 64))


def patch(cov_mv, cov_diag: Tensor, psi: Tensor, lam: Tensor, steps: int = EM_STEPS,
          tol: float = EM_TOL) -> tuple[Tensor, Tensor]:  # fmt: skip
    r"""Factor-analysis EM: :math:`\Psi + \Lambda\Lambda^\top` closest in KL to a covariance known through
    ``cov_mv(X)`` (:math:`\Sigma X` for ``X`` ``(D, k)``) and its diagonal ``cov_diag``, from ``(psi, lam)``.

    One step (Rubin & Thayer 1982; Ghahramani & Hinton 1996, with the data covariance replaced by
    :math:`\Sigma`): :math:`\beta = \Lambda^\top(\Psi + \Lambda\Lambda^\top)^{-1}` (Woodbury, k x k),
    :math:`\Lambda' = \Sigma\beta^\top (I - \beta\Lambda + \beta\Sigma\beta^\top)^{-1}`,
    :math:`\Psi' = \mathrm{diag}(\Sigma - \Lambda'\beta\Sigma)`. Stops when the largest relative change of
    :math:`\Psi` and the relative change of :math:`\Lambda` fall below ``tol`` (at most ``steps`` steps)."""
    k = lam.shape[1]
    eye = torch.eye(k, dtype=lam.dtype, device=lam.device)
    floor = 1e-10 * cov_diag.abs().clamp_min(1e-300)
    for _ in range(steps):
        lt_pinv = lam.T / psi  # (k, D)
        beta = torch.linalg.solve(eye + lt_pinv @ lam, lt_pinv)
        sbt = cov_mv(beta.T)  # Sigma beta^T, (D, k)
        new_lam = torch.linalg.solve((eye - beta @ lam + beta @ sbt).T, sbt.T).T
        new_psi = torch.maximum(cov_diag - (new_lam * sbt).sum(1), floor)
        change = max(((new_psi - psi).abs() / new_psi).max().item(),
                     ((new_lam - lam).norm() / new_lam.norm().clamp_min(1e-300)).item())  # fmt: skip
        psi, lam = new_psi, new_lam
        if change < tol:
            break
    return psi, lam


def _match(st: LowRankState, z: Tensor, g: Tensor, lam_step: float):
    """BaM's update in factored form: the new mean, ``Sigma* X`` and ``diag(Sigma*)``."""
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
    # Sigma* is positive definite; rounding in the difference must not make its diagonal vanish
    diag = torch.maximum(diag, 1e-6 * st.psi)
    loc = st.loc / (1 + lam_step) + r * (cov_mv(gbar[:, None])[:, 0] + zbar)
    return loc, cov_mv, diag


def step(st: LowRankState, score_fn, num_draws: int, lam_step: float) -> tuple[LowRankState, int]:
    """One batch-match-patch iteration with ``num_draws`` draws and step ``lam_step``: the new state and how many
    draws had a finite density and score.

    Draws with a non-finite density or score are dropped. Raises ``FloatingPointError`` when fewer than 2 are
    left (q has wandered where the density is not finite) and ``torch.linalg.LinAlgError`` /
    ``FloatingPointError`` when the update is numerically unusable (the caller goes back one iteration and retries
    with a smaller step)."""
    z = st.sample(num_draws)
    lp, g = score_fn(z)
    ok = torch.isfinite(lp) & torch.isfinite(g).all(-1)
    t, evals, used = st.t + 1, st.grad_evals + num_draws, int(ok.sum())
    if used < 2:
        raise FloatingPointError(f"{num_draws - used} of {num_draws} draws had a non-finite log density or score")
    elbo = lp[ok].mean().item() + st.entropy()
    loc, cov_mv, diag = _match(st, z[ok], g[ok], lam_step)
    psi, lam = patch(cov_mv, diag, st.psi, st.lam)
    new = LowRankState(loc, _floored(psi, lam), lam, t, evals, [*st.trace, elbo])
    problem = unusable(new)
    if problem:
        raise FloatingPointError(f"low-rank BaM produced {problem}")
    var = st.variance
    move = ((new.loc - st.loc).abs() / var.sqrt()).max().item()
    growth = (new.variance / var).max().item()
    if move > MAX_MOVE or growth > MAX_MOVE**2:
        raise FloatingPointError(f"an update moved a mean by {move:.3g} sds and grew a variance {growth:.3g}-fold")
    return new, used


def _finite_share(state: LowRankState, score_fn, num_draws: int) -> float:
    """The share of ``num_draws`` draws of q with a finite log density and score (``num_draws`` gradient
    evaluations): below a half, q has left the posterior (a run that diverged along a flat direction)."""
    lp, g = score_fn(state.sample(num_draws))
    return (torch.isfinite(lp) & torch.isfinite(g).all(-1)).double().mean().item()


def _worse_than(state: LowRankState, pf, score_fn, num_draws: int) -> float | None:
    """By how many nats q's ELBO falls clearly below that of Pathfinder's Gaussian ``pf`` it started from (None when
    it does not): ``num_draws`` draws of each (2 ``num_draws`` gradient evaluations), log p + the exact entropy, a
    deficit beyond 3 standard errors + 1 nat (an unconverged run that wandered along a flat direction: radon's
    noncentered slopes, means at 2e5 with a finite density; a horseshoe's local scales at e^57). ``inf`` when fewer
    than half of q's draws have a finite density."""
    lp, _ = score_fn(state.sample(num_draws))
    ours = lp + state.entropy()
    lp0, _ = score_fn(pf.rsample((num_draws,)).to(state.loc.dtype))
    start = lp0 + pf.entropy().to(lp0.dtype)
    ours, start = ours[torch.isfinite(ours)], start[torch.isfinite(start)]
    if start.numel() < 2:
        return None  # nothing to compare with
    if ours.numel() < max(2, num_draws // 2):
        return math.inf
    se = math.sqrt(ours.var().item() / ours.numel() + start.var().item() / start.numel())
    deficit = start.mean().item() - ours.mean().item()
    return deficit if deficit > 3 * se + 1.0 else None


def breakdown(state: LowRankState, pf, score_fn, num_draws: int, reason: str,
              converged: bool) -> tuple[str, int]:  # fmt: skip
    """Why the q a pBaM run ended on (for ``reason``) cannot be used, in words ("" when it can), and the gradient
    evaluations the checks took: fewer than half of ``num_draws`` draws of q with a finite density
    (:func:`_finite_share`: it diverged), or, unconverged, an ELBO clearly below that of Pathfinder's Gaussian ``pf``
    it started from (:func:`_worse_than`: it wandered off). ``method="auto"`` hands over to the polish then, the
    method raises."""
    share = _finite_share(state, score_fn, num_draws)
    if share < 0.5:
        return f"diverged ({reason}): {share:.0%} of q's draws have a finite log density", num_draws
    if converged:
        return "", num_draws
    deficit = _worse_than(state, pf, score_fn, num_draws)
    if deficit is None:
        return "", 3 * num_draws
    return (f"wandered off ({reason}): its q's ELBO is {deficit:.3g} nats below that of Pathfinder's Gaussian it "
            "started from", 3 * num_draws)  # fmt: skip


def _floored(psi: Tensor, lam: Tensor) -> Tensor:
    return torch.maximum(psi, PSI_FLOOR * (psi + lam.square().sum(1)))


def unusable(state: LowRankState) -> str:
    r"""What makes ``state`` unusable as a Gaussian ("" when nothing): a non-finite mean, diagonal or factor, a
    diagonal that is not positive, or a capacitance :math:`I + \Lambda^\top\Psi^{-1}\Lambda` that is not
    numerically positive definite (the Cholesky factor torch's ``LowRankMultivariateNormal`` needs)."""
    for what, x in (("mean", state.loc), ("diagonal", state.psi), ("factor", state.lam)):
        if not bool(torch.isfinite(x).all()):
            return f"a non-finite {what}"
    if not bool((state.psi > 0).all()):
        return "a diagonal that is not positive"
    k = state.lam.shape[1]
    cap = torch.eye(k, dtype=state.lam.dtype, device=state.lam.device) + (state.lam.T / state.psi) @ state.lam
    if int(torch.linalg.cholesky_ex(cap).info) != 0:
        return "a covariance that is not positive definite"
    return ""


def iterate(state: LowRankState, score_fn, num_draws: int, schedule: Schedule,
            phases: int = PHASES) -> tuple[LowRankState, str, bool]:  # fmt: skip
    r"""Batch-match-patch at BaM's schedule (``schedule.lambda0``) until q is stationary, then up to ``phases``
    phases of constant steps (``min(0.1, last step)``, then a tenth of it each time), each restarted from the
    previous phase's average and run until stationary, stopping when a phase's average moves by less than
    ``schedule.tol`` (means in sds, log-sds) from the previous one's (see the module docstring), or after
    ``schedule.max_iter`` iterations in all. The stationarity window is at least D / B iterations: progress at
    about B / D of the remaining distance per iteration must not pass for stationarity.

    Returns the last phase's average of the stationary iterates (means, marginal variances and factors averaged;
    :math:`\Psi` = averaged variance minus the averaged factor's part, so the averaged marginals are kept), the
    reason and whether it converged."""
    D, B, tol, noise = state.loc.shape[0], num_draws, schedule.tol, schedule.noise
    lambda0, max_iter, min_iter = schedule.lambda0, schedule.max_iter, schedule.min_iter
    t0, previous, fixed, reason, lam_step = state.t, None, None, "", lambda0
    for _ in range(phases + 1):
        # an iteration learns about B of the D directions, and a step lam moves q by about lam of the way: a window
        # shorter than D / B or 1 / lam iterations would take slow progress for stationarity. BaM's schedule only
        # has to bring q near (its fixed point moves with the step, which the later phases remove), so it stops on
        # a drift and noise four times as large
        window = max(min_iter, math.ceil(D / B), 0 if fixed is None else math.ceil(1 / fixed))
        loose = 4.0 if fixed is None else 1.0
        mon = ParameterStationarity(tol=loose * tol, min_window=window, noise=None if noise is None else loose * noise)
        start_t = state.t
        label = "low-rank BaM" + ("" if fixed is None else f", constant step {fixed:.2g}")
        failures, before = 0, state
        for _ in track(range(max(0, max_iter - (state.t - t0))), label, unit="iterations", capped=True):
            lam_step = lambda0 * D * B / (state.t - start_t + 1) if fixed is None else fixed
            try:
                new, _ = step(state, score_fn, B, lam_step)
                before, state, failures = state, new, 0
            except (torch.linalg.LinAlgError, FloatingPointError, RuntimeError) as e:
                # numerically unusable update, or q's draws fell where the density is not finite: go back to the
                # q before (the last step may have thrown it there), smaller steps from now on
                state = LowRankState(before.loc, before.psi, before.lam, state.t + 1, state.grad_evals + B, state.trace)
                lambda0 *= 0.5
                fixed = None if fixed is None else 0.5 * fixed
                failures += 1
                if failures >= MAX_FAILURES:
                    reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
                    return state, f"{failures} {UNUSABLE} ({reason})", False
                continue
            var = state.variance
            if mon.update(state.loc, var, state.lam, state.loc, var.sqrt()):
                break
        if not mon.ready:
            return state, f"{mon.reason or 'still moving'} after {state.t} iterations", False
        current = _average_lowrank(mon)
        if unusable(_with(state, current)):  # averaging cannot break a Gaussian, but rounding can: keep the iterate
            current = (state.loc, state.psi, state.lam)
        state = _with(state, current)
        if not mon.stationary:
            return state, f"{mon.reason or 'still moving'} after {state.t} iterations", False
        reason = f"{mon.reason} (step {lam_step:.3g})"
        if previous is not None and _moved(previous, current) < tol:
            return state, f"{reason}; a smaller step moved q by less than {tol:g} sd", True
        previous = current
        fixed = min(PHASE_STEP, lam_step) if fixed is None else 0.1 * lam_step
    return state, reason, True


def _with(state: LowRankState, avg: tuple[Tensor, Tensor, Tensor]) -> LowRankState:
    return LowRankState(*avg, state.t, state.grad_evals, state.trace)


def _moved(a: tuple[Tensor, Tensor, Tensor], b: tuple[Tensor, Tensor, Tensor]) -> float:
    """Largest change between two q's: means in the newer q's sds, and log-sds."""
    sd_a = (a[1] + a[2].square().sum(1)).sqrt()
    sd_b = (b[1] + b[2].square().sum(1)).sqrt()
    return max(((a[0] - b[0]).abs() / sd_b).max().item(), (sd_a.log() - sd_b.log()).abs().max().item())


def _average_lowrank(mon: ParameterStationarity) -> tuple[Tensor, Tensor, Tensor]:
    """The window's average q: mean of the means, of the marginal variances and of the factors; Psi takes the
    rest of the averaged variance (so the factors' jitter is not lost from the marginals)."""
    loc, var, lam = mon.average()
    psi = torch.maximum(var - lam.square().sum(1), 1e-6 * var)
    return loc, psi, lam


def init(pf, rank: int) -> LowRankState:
    r"""Pathfinder's diagonal-plus-low-rank Gaussian (a :class:`~varinf.families.DiagPlusLowRankNormal`,
    :math:`\Sigma = \alpha^{1/2}(I + Q(LL^\top - I)Q^\top)\alpha^{1/2}`) patched into rank ``rank``."""
    loc, alpha = pf.loc.double(), pf.alpha.double()
    Q, L = pf.Q.double(), pf.L.double()
    inner = L @ L.T - torch.eye(L.shape[0], dtype=L.dtype, device=L.device)
    sa = alpha.sqrt()

    def cov_mv(X):
        Y = sa[:, None] * X
        return sa[:, None] * (Y + Q @ (inner @ (Q.T @ Y)))

    g = torch.Generator().manual_seed(0)
    lam = 0.1 * sa[:, None] * torch.randn(loc.shape[0], rank, generator=g, dtype=loc.dtype).to(loc.device)
    psi, lam = patch(cov_mv, pf.variance.double(), alpha.clone(), lam)
    return LowRankState(loc, psi, lam)


def lowrank_module(state: LowRankState) -> LowRank:
    """A :class:`~varinf.families.LowRank` family set to the state's q."""
    D, k = state.lam.shape
    fam = LowRank(D, rank=k, loc=state.loc)
    with torch.no_grad():
        fam.loc.copy_(state.loc)
        fam.cov_factor.copy_(state.lam)
        fam.log_diag_scale.copy_(0.5 * state.psi.log())
    return fam


def run(model, options: BaMOptions, config: FitConfig, rank: int) -> MethodRun:
    """pBaM (``method="bam", family="lowrank"``), started from Pathfinder's best Gaussian (L-BFGS from ``init`` and
    three U(-2, 2) points, pruned, as ``method="auto"``) patched into rank ``rank``; ``options``: ``max_steps``
    (iterations in all), ``num_draws`` (B; default :func:`batch_size`), ``lambda0``, ``tol_param``."""
    t0 = time.perf_counter()
    s = start(model, config, laplace=False)
    model = s.model
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= model.dim:
        raise ValueError(f"rank must be between 1 and dim={model.dim}, got {rank!r}")
    paths = pathfinder.run_paths(model.log_density, s.u0, pathfinder.START_OPTIONS, prune=True)
    if not paths.states:
        raise ValueError(f"{model.name}: no usable Gaussian approximation along any L-BFGS path (the log density "
                         "may be non-finite almost everywhere)")  # fmt: skip
    B = options.num_draws or batch_size(rank)
    schedule = Schedule(options.max_steps, options.lambda0, options.tol_param)
    first = init(paths.states[0].q, rank)
    problem = unusable(first)
    if problem:
        raise FitError(f"{model.name}: low-rank BaM cannot start: Pathfinder's Gaussian patched into rank {rank} has "
                       f"{problem}; try {render('method_advi', name='lowrank')}")  # fmt: skip
    score_fn = scores(model.log_density, s.dtype)
    state, reason, converged = iterate(first, score_fn, B, schedule)
    problem, evals = breakdown(state, paths.states[0].q, score_fn, 2 * B, reason, converged)
    state.grad_evals += evals
    if problem:
        raise FitError(f"{model.name}: low-rank BaM {problem}; try {render('method_advi', name='lowrank')}")
    if not converged:
        knob = render("method_advi", name="lowrank") if UNUSABLE in reason else f"raise {render('max_steps')}"
        warn(f"{model.name}: low-rank BaM not converged ({reason}); {knob}", ConvergenceWarning)
    fam = lowrank_module(state).to(device=s.device, dtype=s.dtype)
    with torch.no_grad():
        problem = unusable(LowRankState(fam.loc, (2 * fam.log_diag_scale).exp(), fam.cov_factor))
    if problem:
        raise FitError(f"{model.name}: low-rank BaM's q has {problem} in {s.dtype} (after {state.t} iterations); "
                       f"try {render('method_advi', name='lowrank')}")  # fmt: skip
    return MethodRun(
        model=model, family=fam, objective=None, elbo_trace=torch.tensor(state.trace, dtype=torch.float64),
        converged=converged, convergence_reason=reason, num_steps=state.t,
        grad_evals=s.evaluations + paths.count[0] + state.grad_evals, wall_time=time.perf_counter() - t0,
        method="bam", family_name="lowrank", density_evals=sum(st.density_evaluations for st in paths.states),
        options=options, family_options={"rank": rank},
    )  # fmt: skip
