r"""``method="auto"`` (the default): pick the fastest route to an accurate q for the family asked for.

::

    explicit ADVI settings (an objective, lr, optimizer, a fixed budget, a family module, minibatches)
        -> ADVI as asked (route ("advi",), the reason recorded)
    otherwise:
      1. Pathfinder start: L-BFGS from zeros and 3 U(-2, 2) points (optim/pathfinder.py), the Gaussian with the
         highest ELBO along the best path
      2. full rank (and mean-field / flow up to DENSE_MAX dimensions): Batch-and-Match from there
      3. by family:  fullrank  -> done
                     meanfield -> ADVI polish (optim/polish.py: Adam, STL, a Gaussian control variate, several
                                  draws a step) from the mean-field optimum for the Gaussian fit, whitened by it
                     lowrank   -> ADVI polish from Pathfinder's Gaussian patched into low rank
                     flow      -> the flow fitted by ADVI (STL) in coordinates whitened by the Gaussian fit
    family="auto": full rank up to DENSE_MAX dimensions, low rank above (mean-field under ADVI)

Each stochastic stage stops when q stops moving relative to its own Monte Carlo noise and returns the average
of its stationary iterates (:mod:`.stationarity`). The result asks :func:`varinf.fit` to report PSIS-corrected
estimates whenever k-hat allows (``FitResult.report = "psis"``). Seeded runs are deterministic: every draw comes
from the RNG that ``optimize`` seeds, and the extra starts from a fixed generator.

Shapes: q over the model's flat unconstrained space ``(D,)``. Cost: the L-BFGS paths (about 1.1 gradient
evaluations per iteration; later paths usually stop early), then ``D + 2`` (8…64) gradient evaluations per BaM
iteration in one batched call plus :math:`O(D^3)`, then 8 per polish step; on posteriordb's posteriors the
median default fit is a few hundred gradient evaluations (``benchmarks/posterior_speed.py``).
"""

from __future__ import annotations

import math
import time
import warnings

import torch

from ..families import LowRank, MeanField, Preconditioned, canonical_family
from ..families.gaussian import DEFAULT_RANK
from ..models import Model
from ..objectives import ELBO
from .advi import advi
from .bam import BaMState, batch_size, full_rank_module, run_bam
from .bam_lowrank import LowRankState, patch
from .config import FitConfig
from .errors import ConvergenceWarning
from .pathfinder import run_paths
from .polish import polish
from .result import FitResult, direct_result
from .start import start
from .stationarity import scores

__all__ = ["DENSE_MAX", "advi_reason", "auto", "resolve_family"]

DENSE_MAX = 300  # dimensions up to which family="auto" means full rank (and the Gaussian stage is dense BaM)
CV_MAX = 2000  # dimensions up to which the polish uses a dense Gaussian control variate
POLISH_MAX = 1000  # steps: a polish still drifting after this many (a funnel) stops with a ConvergenceWarning
LOWRANK_DEFAULT = 5  # rank of the low-rank Gaussian when auto chooses it for a high-dimensional model


def resolve_family(family, method: str, dim: int):
    """``"auto"`` -> the family a method fits by default; anything else unchanged."""
    if not (isinstance(family, str) and family.lower() == "auto"):
        return family
    if method == "advi":
        return "meanfield"
    return "fullrank" if dim <= DENSE_MAX else "lowrank"


def advi_reason(family, objective, config: FitConfig) -> str:
    """Why ``auto`` must run plain ADVI ("" when it need not): settings only ADVI understands."""
    if getattr(config, "batch_size", None):  # minibatch SVI: only stochastic-gradient ADVI subsamples the data
        return "minibatches (batch_size) need stochastic-gradient ADVI"
    if objective is not None:
        return f"objective {type(objective).__name__} given (only ADVI optimizes a chosen bound)"
    if not isinstance(family, str):
        return f"a family module ({type(family).__name__}) was given"
    if config.lr != "auto":
        return f"lr={config.lr:g} given"
    if config.optimizer is not None:
        return "an optimizer was given"
    if config.tol_rel_obj is None:
        return "a fixed step budget (tol_rel_obj=None) was asked for"
    return ""


def auto(model: Model, family, objective, config: FitConfig, family_kwargs: dict) -> FitResult:
    """The route described in the module docstring."""
    t0 = time.perf_counter()
    why = advi_reason(family, objective, config)
    if why:
        res = advi(model, resolve_family(family, "advi", model.dim), objective or ELBO(), config, family_kwargs)
        res.method, res.route, res.route_reason = "auto", ("advi",), why
        return res
    key = canonical_family(resolve_family(family, "auto", model.dim))
    kw = dict(family_kwargs)
    s = start(model, config, laplace=False)
    model, D = s.model, s.model.dim
    states, paths, grad_evals, pruned = run_paths(model.log_density, s.u0, num_draws=8, prune=True)
    if not states:
        raise ValueError(f"{model.name}: no usable Gaussian approximation along any L-BFGS path (the log density "
                         "may be non-finite almost everywhere)")  # fmt: skip
    density_evals = sum(st.density_evaluations for st in states)
    pf = states[0].q
    score_fn = scores(model.log_density, s.dtype)
    route, steps, reason, converged = ["pathfinder"], 0, "", True
    trace = [e for e in states[0].elbos.tolist() if math.isfinite(e)]  # Pathfinder's ELBOs along its best path
    rank = min(int(kw.pop("rank", DEFAULT_RANK if key == "lowrank" and family != "auto" else LOWRANK_DEFAULT)), D)
    if key == "fullrank" or (key in ("meanfield", "flow") and D <= DENSE_MAX):
        st = BaMState(pf.loc.double(), pf.covariance_matrix.double())
        st, reason, converged = run_bam(st, score_fn, batch_size(D), config.max_steps, tol=config.tol_param,
                                        noise=2 * config.tol_param)  # fmt: skip
        grad_evals += st.grad_evals
        steps += st.t
        trace += st.trace
        route.append("bam")
        loc, cov = st.loc, st.cov
    else:  # the Pathfinder Gaussian is the Gaussian fit (dense only where a control variate can use it)
        loc, cov = pf.loc.double(), pf.covariance_matrix.double() if D <= CV_MAX else None
    if key == "fullrank":
        fam = full_rank_module(loc, cov)
    elif key == "flow":
        return _flow(model, s, loc, cov, config, kw, t0, grad_evals, density_evals, route, steps,
                     _start_note(paths, pruned))  # fmt: skip
    else:
        fam = _whitened_start(key, pf, loc, cov, rank).to(device=s.device, dtype=s.dtype)
        gauss = None
        if cov is not None:
            prec = torch.cholesky_inverse(torch.linalg.cholesky(cov))
            gauss = (loc.to(s.dtype), prec.to(s.dtype))
        it, ev, reason, converged = polish(model.log_density, fam, min(config.max_steps, POLISH_MAX),
                                           tol=config.tol_param, noise=2 * config.tol_param, gaussian=gauss,
                                           trace=None if gauss is not None else trace)  # fmt: skip
        grad_evals += ev
        steps += it
        route.append("advi polish")
    if kw:
        raise TypeError(f"unexpected keyword arguments for the {key} family: {sorted(kw)}")
    if not converged:
        warnings.warn(f"{model.name}: not converged ({reason})", ConvergenceWarning, stacklevel=4)
    return direct_result(
        model, fam.to(device=s.device, dtype=s.dtype), objective, trace, converged=converged, reason=reason,
        num_steps=steps, grad_evals=grad_evals, t0=t0, method="auto", family_name=key, route=tuple(route),
        route_reason=_start_note(paths, pruned), density_evals=density_evals, report="psis",
    )


def _start_note(paths, pruned: int) -> str:
    lengths = ", ".join(str(len(p) - 1) for p in paths)
    return (f"Pathfinder start from {len(paths)} L-BFGS paths ({lengths} iterations; {pruned} stopped on reaching "
            "the first path's basin)")  # fmt: skip


def _whitened_start(key: str, pf, loc, cov, rank: int):
    """Mean-field or low-rank family at the start of the polish, in coordinates whitened by its own scales.

    mean-field: the mean-field optimum for N(loc, cov), sd_i = (cov^-1)_ii^-1/2 (Pathfinder's marginal sds
    when there is no dense cov); low rank: Pathfinder's Gaussian patched into Psi + Lambda Lambda^T."""
    D = loc.shape[0]
    if key == "meanfield":
        sd = torch.cholesky_inverse(torch.linalg.cholesky(cov)).diagonal().rsqrt() if cov is not None else pf.stddev
        return Preconditioned(MeanField(D, init_scale=1.0), loc, sd.double())
    lst = _lowrank_start(pf, rank)
    scale = lst.variance.sqrt()
    base = LowRank(D, rank=rank, init_scale=1.0).double()
    with torch.no_grad():
        base.loc.zero_()
        base.cov_factor.copy_(lst.lam / scale[:, None])
        base.log_diag_scale.copy_(0.5 * lst.psi.log() - scale.log())
    return Preconditioned(base, loc, scale)


def _lowrank_start(pf, rank: int) -> LowRankState:
    """Pathfinder's diagonal-plus-low-rank Gaussian patched into :math:`\\Psi + \\Lambda\\Lambda^\\top` of ``rank``."""
    loc, alpha = pf.loc.double(), pf.alpha.double()
    Q, L = pf.Q.double(), pf.L.double()
    inner = L @ L.T - torch.eye(L.shape[0], dtype=L.dtype, device=L.device)
    sa = alpha.sqrt()

    def cov_mv(X):  # Sigma = a^1/2 (I + Q (LL^T - I) Q^T) a^1/2
        Y = sa[:, None] * X
        return sa[:, None] * (Y + Q @ (inner @ (Q.T @ Y)))

    g = torch.Generator().manual_seed(0)
    lam = 0.1 * sa[:, None] * torch.randn(loc.shape[0], rank, generator=g, dtype=loc.dtype).to(loc.device)
    psi, lam = patch(cov_mv, pf.variance.double(), alpha.clone(), lam, steps=20)
    return LowRankState(loc, psi, lam)


def _flow(model, s, loc, cov, config: FitConfig, kw: dict, t0: float, grad_evals: int, density_evals: int,
          route: list[str], steps: int, note: str) -> FitResult:  # fmt: skip
    """The flow, whitened by the Gaussian fit N(loc, cov) and started near the identity, fitted by ADVI.

    Coupling layers (``passes=2``) unless asked otherwise: a fully autoregressive flow needs D passes per draw.
    Eight reparameterized draws a step (one pass each: ``rsample_and_log_prob``), Adam at 3e-3 in the whitened
    coordinates (no step-size trials), 50-step windows, at most two step-size reductions and 2000 steps (the
    Gaussian start has done most of the work)."""
    from ..families import make_family

    kw.setdefault("passes", 2)
    base = make_family("flow", model.dim, **kw)
    A = torch.linalg.cholesky(cov) if cov is not None else torch.diag(torch.ones_like(loc))
    fam = Preconditioned(base, loc.to(s.dtype), A.to(s.dtype)).to(device=s.device, dtype=s.dtype)
    cfg = config.replace(init=loc.to(s.dtype), check=False, lr=3e-3, window=50, max_decays=min(config.max_decays, 2),
                         max_steps=min(config.max_steps, 2000))  # fmt: skip
    res = advi(model, fam, ELBO(num_particles=8), cfg, {})
    res.grad_evals += grad_evals
    res.num_steps += steps
    res.wall_time = time.perf_counter() - t0
    res.method, res.family_name, res.route = "auto", "flow", (*route, "advi (flow, warm-started)")
    res.density_evals = density_evals
    res.route_reason = note
    res.report = "psis"
    return res
