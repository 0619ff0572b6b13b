r"""``method="auto"`` (the default): pick the fastest route to an accurate q for the family asked for.

::

    explicit ADVI settings (an objective, lr, optimizer, a fixed budget, a family module, minibatches)
        -> ADVI as asked (route ("advi",), the reason recorded)
    otherwise:
      1. Pathfinder start: L-BFGS from zeros and 3 U(-2, 2) points (methods/pathfinder.py), the Gaussian with the
         highest ELBO along the best path
      2. full rank (and mean-field / flow up to DENSE_MAX dimensions): Batch-and-Match from there (methods/bam.py)
      3. by family:  fullrank  -> done
                     meanfield -> ADVI polish (methods/advi.py, stop="parameters": Adam, a Gaussian control
                                  variate, 8 draws a step) from the mean-field optimum for the Gaussian fit,
                                  whitened by it
                     lowrank   -> up to PBAM_MAX (5000) dimensions: patch-step BaM (methods/bam_lowrank.py)
                                  from Pathfinder's Gaussian patched into low rank; above (or when pBaM broke
                                  down: unusable updates, a q off the density's support, or unconverged with an
                                  ELBO clearly below Pathfinder's): ADVI polish from Pathfinder's Gaussian
                     flow      -> the flow fitted by ADVI (STL) in coordinates whitened by the Gaussian fit
    family="auto": full rank up to DENSE_MAX dimensions, low rank above (mean-field under ADVI)

Each stochastic stage stops when q stops moving relative to its own Monte Carlo noise and returns the average
of its stationary iterates (:mod:`..stationarity`). Each stage gets its own options (``PathfinderOptions``,
BaM's schedule, ``ADVIOptions``), made from ``AutoOptions`` (``max_steps``, ``tol_param``) here.

::

    init(model, family, options, config) -> AutoState     the model moved and checked, the route to take
    step(state) -> (state, StageInfo)                      the next stage: pathfinder, bam / pbam, polish / flow
    run(model, family, objective, options, config, ...)    ADVI when asked for; else the stages -> MethodRun The result asks :func:`varinf.fit` to report PSIS-corrected
estimates whenever k-hat allows (``FitResult.report = "psis"``). Seeded runs are deterministic: every draw comes
from the RNG that ``optimize`` seeds, and the extra starts from a fixed generator.

Shapes: q over the model's flat unconstrained space ``(D,)``. Cost: the L-BFGS paths (about 1.1 gradient
evaluations per iteration; later paths usually stop early), then ``D + 2`` (8…64) gradient evaluations per BaM
iteration in one batched call plus :math:`O(D^3)`, then 8 per polish step; on posteriordb's posteriors the
median default fit is a few hundred gradient evaluations (``benchmarks/posterior_speed.py``). Low rank by
patch-step BaM: 2(k+1) gradient evaluations per iteration plus :math:`O(D(k+B)^2)`, about 5-7 D in all on exact
Gaussian hierarchies (``benchmarks/high_dim.py``); on posteriordb's programs with 388-3,845 latents a median of
88k, 11 of 27 stopping at the 10,000-iteration cap (``benchmarks/posteriordb_all.py``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from ...advice import render
from ...errors import ConvergenceWarning, warn
from ...families import DEFAULT_RANK, LowRank, MeanField, Preconditioned, canonical_family, make_family
from ...objectives import ELBO, ControlVariateELBO
from ..config import FitConfig, check_int, check_positive
from ..initialization import Start, start
from ..result import MethodRun
from ..routing import DENSE_MAX, MethodOptions
from ..stationarity import Schedule, scores
from . import advi, bam, bam_lowrank, pathfinder
from .advi import ADVIOptions

__all__ = ["CV_MAX", "DENSE_MAX", "PBAM_MAX", "POLISH_MAX", "AutoOptions", "AutoState", "Options", "StageInfo", "advi_reason",
           "family_options", "init", "run", "step"]  # fmt: skip

CV_MAX = 2000  # dimensions up to which the polish uses a dense Gaussian control variate
POLISH_MAX = 1000  # steps: a polish still drifting after this many (a funnel) stops with a ConvergenceWarning
PATHS = pathfinder.START_OPTIONS  # auto's start
# Low rank: patch-step BaM as auto's stage up to this many dimensions, an ADVI polish above (and where pBaM ends on
# numerically unusable updates). Against long Stan NUTS references with 400-1,000 latents (benchmarks/high_dim.py)
# pBaM's means were within a few hundredths of a posterior sd where the polish's were off by tenths to whole sds.
PBAM_MAX = bam_lowrank.PBAM_MAX
FLOW_OPTIONS = frozenset({"passes"})  # (and every other flow option: the flow stage builds the flow itself)


@dataclass(frozen=True)
class AutoOptions(MethodOptions):
    """``method="auto"``'s settings: a cap on each stage's iterations and the stationarity tolerance, in sds of q.
    Any ADVI option (``lr``, ``batch_size``, ``tol_rel_obj=None``, ...) set to other than its default means ADVI
    runs as asked instead (``advi``: those options; ``route_reason`` says which)."""

    method: ClassVar[str] = "auto"
    max_steps: int = 10_000
    tol_param: float = 0.05
    advi: ADVIOptions = field(default_factory=ADVIOptions)

    def __post_init__(self):
        check_int("max_steps", self.max_steps, 1)
        check_positive("tol_param", self.tol_param)

    @classmethod
    def names(cls) -> frozenset[str]:
        return (super().names() - {"advi"}) | ADVIOptions.names()

    def updated(self, **changes) -> AutoOptions:
        own = {k: changes.pop(k) for k in ("max_steps", "tol_param") if k in changes}
        return dataclasses.replace(self, **own, advi=self.advi.updated(**changes))

    def advi_options(self) -> ADVIOptions:
        """The options ADVI runs with on the ADVI route."""
        return self.advi.updated(max_steps=self.max_steps, tol_param=self.tol_param)


Options = AutoOptions


def _knob(state: AutoState, options: AutoOptions) -> str:
    """What to change when auto stops unconverged: the polish has its own cap (POLISH_MAX), which only ADVI run
    as a method lifts; the other stages stop at ``max_steps``."""
    if state.route and state.route[-1] == "advi polish" and options.max_steps > POLISH_MAX:
        return (
            f"auto's polish stops at {POLISH_MAX} steps; for a longer run: {render('longer_advi', n=10 * POLISH_MAX)}"
        )
    return f"raise {render('max_steps')}"


def family_options(family: str | None) -> frozenset[str]:
    """Every option of the family asked for: the route builds the family (low rank: ``rank``; flow: all), and
    others mean ADVI (:func:`advi_reason`)."""
    return advi.family_options(family)


def advi_reason(family, objective, options: AutoOptions, family_opts: dict | None = None) -> str:
    """Why ``auto`` must run plain ADVI ("" when it need not): settings only ADVI understands."""
    given = options.advi.given()
    if given.get("batch_size"):  # minibatch SVI: only stochastic-gradient ADVI subsamples the data
        return "minibatches (batch_size) need stochastic-gradient ADVI"
    if objective is not None:
        return f"objective {type(objective).__name__} given (only ADVI optimizes a chosen bound)"
    if not isinstance(family, str):
        return f"a family module ({type(family).__name__}) was given"
    if "lr" in given:
        return f"lr={given['lr']:g} given"
    if "optimizer" in given:
        return "an optimizer was given"
    if "tol_rel_obj" in given and given["tol_rel_obj"] is None:
        return "a fixed step budget (tol_rel_obj=None) was asked for"
    if given:
        return f"ADVI options given ({', '.join(sorted(given))})"
    unused = sorted(set(family_opts or {}) - _own_family_options(family))
    return f"family options only ADVI uses given ({', '.join(unused)})" if unused else ""


def _own_family_options(family: str) -> frozenset[str]:
    key = canonical_family(family) if family.lower() != "auto" else None
    return {"lowrank": frozenset({"rank"}), "flow": advi.family_options("flow")}.get(key, frozenset())


def resolve_family(family, dim: int, options: dict, objective):
    """``"auto"``: mean-field when ADVI runs, else full rank up to ``DENSE_MAX`` dimensions and low rank above."""
    if not (isinstance(family, str) and family.lower() == "auto"):
        return family
    opts = AutoOptions().updated(**{k: v for k, v in options.items() if k in AutoOptions.names()})
    if advi_reason(family, objective, opts):
        return "meanfield"
    return "fullrank" if dim <= DENSE_MAX else "lowrank"


@dataclass
class AutoState:
    """Where the route is: the start, the family, the stages run (``route``), their counts and ELBO trace, the
    Gaussian fit so far (``loc``, ``cov``; Pathfinder's ``pf``) and the family module once built."""

    s: Start
    key: str
    options: AutoOptions
    config: FitConfig
    family_opts: dict
    stage: str = "pathfinder"
    paths: Any = None
    pf: Any = None
    loc: Tensor | None = None
    cov: Tensor | None = None
    fam: Any = None
    flow_run: MethodRun | None = None
    route: list[str] = field(default_factory=list)
    trace: list[float] = field(default_factory=list)
    grad_evals: int = 0
    density_evals: int = 0
    steps: int = 0
    reason: str = ""
    converged: bool = True


@dataclass(frozen=True)
class StageInfo:
    """One stage: its name, the gradient evaluations and iterations it spent, and how it ended."""

    stage: str
    grad_evals: int
    steps: int
    reason: str = ""


def init(model, family: str, options: AutoOptions, config: FitConfig, family_opts: dict) -> AutoState:
    """The model moved to the fit's dtype/device and checked; the route starts with Pathfinder."""
    return AutoState(start(model, config, laplace=False), canonical_family(family), options, config, dict(family_opts))


def step(state: AutoState) -> tuple[AutoState, StageInfo]:
    """Run the next stage of the route (module docstring)."""
    before = (state.grad_evals, state.steps)
    stage = state.stage
    if stage == "pathfinder":
        _pathfinder(state)
    elif stage == "bam":
        _bam(state)
    elif stage == "pbam":
        _pbam(state)
    elif stage == "polish":
        _polish(state)
    elif stage == "flow":
        _flow(state)
    else:
        raise ValueError(f"auto: no stage after {stage!r}")
    return state, StageInfo(stage, state.grad_evals - before[0], state.steps - before[1], state.reason)


def _pathfinder(state: AutoState) -> None:
    model = state.s.model
    state.paths = pathfinder.run_paths(model.log_density, state.s.u0, PATHS, prune=True)
    states = state.paths.states
    if not states:
        raise ValueError(f"{model.name}: no usable Gaussian approximation along any L-BFGS path (the log density "
                         "may be non-finite almost everywhere)")  # fmt: skip
    state.grad_evals += state.paths.count[0]
    state.density_evals = sum(st.density_evaluations for st in states)
    state.pf = states[0].q
    state.trace = [e for e in states[0].elbos.tolist() if math.isfinite(e)]  # the ELBOs along its best path
    state.route.append("pathfinder")
    D = model.dim
    if state.key == "fullrank" or (state.key in ("meanfield", "flow") and D <= DENSE_MAX):
        state.stage = "bam"
        return
    if state.key == "lowrank" and D <= PBAM_MAX:
        state.stage = "pbam"
        return
    _from_pathfinder(state, "flow" if state.key == "flow" else "polish")


def _from_pathfinder(state: AutoState, stage: str) -> None:
    """The Pathfinder Gaussian as the Gaussian fit for ``stage`` (the polish or the flow; dense only where the
    polish's control variate can use it)."""
    state.loc = state.pf.loc.double()
    state.cov = state.pf.covariance_matrix.double() if state.s.model.dim <= CV_MAX else None
    state.stage = stage


def _pbam(state: AutoState) -> None:
    """Low rank up to ``PBAM_MAX`` dimensions: patch-step BaM from Pathfinder's Gaussian patched into rank k."""
    s, o = state.s, state.options
    rank = min(state.family_opts.get("rank", DEFAULT_RANK), s.model.dim)
    schedule = Schedule(o.max_steps, tol=o.tol_param)
    st, B = bam_lowrank.init(state.pf, rank), bam_lowrank.batch_size(rank)
    score_fn = scores(s.model.log_density, s.dtype)
    st, state.reason, state.converged = bam_lowrank.iterate(st, score_fn, B, schedule)
    broken = bam_lowrank.UNUSABLE in state.reason or bool(bam_lowrank.unusable(st))
    if not broken:  # q diverged where the density is not finite, or wandered off where it is but far worse
        problem, evals = bam_lowrank.breakdown(st, state.pf, score_fn, 2 * B, state.reason, state.converged)
        broken, state.grad_evals = bool(problem), state.grad_evals + evals
    state.grad_evals += st.grad_evals
    state.steps += st.t
    state.trace += st.trace
    state.route.append("pbam")
    if broken:  # pBaM broke down: the polish takes over from Pathfinder's Gaussian
        _from_pathfinder(state, "polish")
        return
    state.fam, state.stage = bam_lowrank.lowrank_module(st), "done"


def _bam(state: AutoState) -> None:
    s, o = state.s, state.options
    D = s.model.dim
    schedule = Schedule(o.max_steps, tol=o.tol_param, noise=2 * o.tol_param)
    st = bam.init(state.pf.loc, state.pf.covariance_matrix)
    st, state.reason, state.converged = bam.iterate(
        st, scores(s.model.log_density, s.dtype), bam.batch_size(D), schedule
    )
    state.grad_evals += st.grad_evals
    state.steps += st.t
    state.trace += st.trace
    state.route.append("bam")
    state.loc, state.cov = st.loc, st.cov
    if state.key == "fullrank":
        state.fam = bam.full_rank_module(state.loc, state.cov)
        state.stage = "done"
    else:
        state.stage = "flow" if state.key == "flow" else "polish"


def _polish(state: AutoState) -> None:
    """ADVI with the parameters' stationarity rule, from the mean-field or low-rank start whitened by the
    Gaussian fit, with that Gaussian as control variate when it is dense."""
    s, o, loc, cov = state.s, state.options, state.loc, state.cov
    rank = min(state.family_opts.get("rank", DEFAULT_RANK), s.model.dim)
    fam = _whitened_start(state.key, state.pf, loc, cov, rank).to(device=s.device, dtype=s.dtype)
    if cov is not None:
        prec = torch.cholesky_inverse(torch.linalg.cholesky(cov))
        objective = ControlVariateELBO(loc.to(s.dtype), prec.to(s.dtype), num_particles=8)
    else:
        objective = ELBO(num_particles=8, gradient="stl")
    opts = ADVIOptions(lr=0.05, max_steps=min(o.max_steps, POLISH_MAX), tol_param=o.tol_param, noise=2 * o.tol_param,
                       stop="parameters")  # fmt: skip
    fit = advi.fit_family(s.model.log_density, fam, objective, opts, s.model.name)
    state.grad_evals += fit.grad_evals
    state.steps += fit.state.t + fit.state.skipped
    if cov is None:  # (with the control variate the bound is known up to a constant only)
        state.trace += fit.state.trace
    state.reason, state.converged = fit.outcome.reason, fit.outcome.converged
    state.route.append("advi polish")
    state.fam, state.stage = fam, "done"


def _whitened_start(key: str, pf, loc, cov, rank: int):
    """Mean-field or low-rank family at the start of the polish, in coordinates whitened by its own scales.

    mean-field: the mean-field optimum for N(loc, cov), sd_i = (cov^-1)_ii^-1/2 (Pathfinder's marginal sds
    when there is no dense cov); low rank: Pathfinder's Gaussian patched into Psi + Lambda Lambda^T."""
    D = loc.shape[0]
    if key == "meanfield":
        sd = torch.cholesky_inverse(torch.linalg.cholesky(cov)).diagonal().rsqrt() if cov is not None else pf.stddev
        return Preconditioned(MeanField(D, init_scale=1.0), loc, sd.double())
    lst = bam_lowrank.init(pf, rank)
    scale = lst.variance.sqrt()
    base = LowRank(D, rank=rank, init_scale=1.0).double()
    with torch.no_grad():
        base.loc.zero_()
        base.cov_factor.copy_(lst.lam / scale[:, None])
        base.log_diag_scale.copy_(0.5 * lst.psi.log() - scale.log())
    return Preconditioned(base, loc, scale)


def _flow(state: AutoState) -> None:
    """The flow, whitened by the Gaussian fit N(loc, cov) and started near the identity, fitted by ADVI.

    Coupling layers (``passes=2``) unless asked otherwise: a fully autoregressive flow needs D passes per draw.
    Eight reparameterized draws a step (one pass each: ``rsample_and_log_prob``), Adam at 3e-3 in the whitened
    coordinates (no step-size trials), 50-step windows, at most two step-size reductions and 2000 steps (the
    Gaussian start has done most of the work)."""
    s, o, loc, cov = state.s, state.options, state.loc, state.cov
    flow_opts = {"passes": 2, **state.family_opts}
    base = make_family("flow", s.model.dim, **flow_opts)
    A = torch.linalg.cholesky(cov) if cov is not None else torch.diag(torch.ones_like(loc))
    fam = Preconditioned(base, loc.to(s.dtype), A.to(s.dtype)).to(device=s.device, dtype=s.dtype)
    opts = ADVIOptions(lr=3e-3, window=50, max_decays=2, max_steps=min(o.max_steps, 2000), tol_param=o.tol_param)
    config = state.config.replace(init=loc.to(s.dtype), check=False)
    run_ = advi.run(s.model, fam, ELBO(num_particles=8), opts, config, {})
    state.flow_run = dataclasses.replace(run_, family_options=flow_opts)
    state.grad_evals += run_.grad_evals
    state.steps += run_.num_steps
    state.route.append("advi (flow, warm-started)")
    state.fam, state.stage = run_.family, "done"


def run(model, family, objective, options: AutoOptions, config: FitConfig, family_options: dict) -> MethodRun:
    """The route described in the module docstring."""
    t0 = time.perf_counter()
    why = advi_reason(family, objective, options, family_options)
    if why:
        res = advi.run(model, family, objective, options.advi_options(), config, family_options)
        return dataclasses.replace(res, method="auto", route=("advi",), route_reason=why)
    state = init(model, family, options, config, family_options)
    while state.stage != "done":
        state, _ = step(state)
    if state.flow_run is not None:
        done = state.flow_run
        return dataclasses.replace(done, grad_evals=state.grad_evals, num_steps=state.steps,
                                   wall_time=time.perf_counter() - t0, method="auto", family_name="flow",
                                   route=tuple(state.route), route_reason=_start_note(state.paths),
                                   density_evals=state.density_evals, report="psis", options=options)  # fmt: skip
    if not state.converged:
        warn(f"{state.s.model.name}: not converged ({state.reason}); {_knob(state, options)}", ConvergenceWarning)
    s = state.s
    return MethodRun(
        model=s.model, family=state.fam.to(device=s.device, dtype=s.dtype), objective=objective,
        elbo_trace=torch.tensor(state.trace, dtype=torch.float64), converged=state.converged,
        convergence_reason=state.reason, num_steps=state.steps, grad_evals=state.grad_evals,
        wall_time=time.perf_counter() - t0, method="auto", family_name=state.key, density_evals=state.density_evals,
        route=tuple(state.route), route_reason=_start_note(state.paths), report="psis", options=options,
        family_options=state.family_opts,
    )  # fmt: skip


def _start_note(paths) -> str:
    lengths = ", ".join(str(len(p) - 1) for p in paths.paths)
    return (f"Pathfinder start from {len(paths.paths)} L-BFGS paths ({lengths} iterations; {paths.pruned} stopped on "
            "reaching the first path's basin)")  # fmt: skip
