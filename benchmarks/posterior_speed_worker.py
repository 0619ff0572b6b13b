"""One system on one posterior, in a process of its own: the worker of ``posterior_speed.py``.

    python benchmarks/posterior_speed_worker.py SYSTEM POSTERIOR --budget CPU_S --result FILE.json

SYSTEM is ``varinf`` (every varinf method/family fit, one after another), ``nuts`` (NumPyro NUTS, 4 chains),
``svi-AutoNormal`` / ``svi-AutoMultivariateNormal`` (NumPyro SVI, Adam, a learning-rate sweep) or ``pathfinder``
(Blackjax multi-path Pathfinder, an L-BFGS iteration-cap sweep). A system runs its *settings* in turn; each
setting is watched at a geometric sequence of checkpoints (SVI steps 100, 200, 500, 1000, ...; NUTS draws per
chain 25, 50, 100, ... after warm-up; Pathfinder paths 1, 2, 4, ...). At each checkpoint the estimates are
compared with posteriordb's reference draws; the time *charged* to a checkpoint is everything the system did
to get there (model set-up, tracing and compilation, warm-up, steps, sampling, importance weighting) and
excludes the comparison itself. A setting stops at the first checkpoint that meets the accuracy goal (max
|mean error| <= 0.1 reference sd and every sd ratio in [0.8, 1.2]), or when its charged CPU time reaches its
budget: the given one, or the best time an earlier setting of the same system needed (it cannot do better).

Before the clock starts: imports, reading the posterior, and a trivial call that starts the library's runtime
(JAX's backend; a tiny torch fit), so no system pays the one-time start-up of its process. JAX's caches are
cleared between settings, so each setting pays its own compilation (recorded apart, from JAX's compile events).
Everything in float64. Writes the result JSON (``SystemResult``) to ``--result``. Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

TARGET_ERR, SD_RANGE = 0.1, (0.8, 1.2)
VARINF_FITS = (
    "auto/auto",
    "auto/meanfield",
    "auto/lowrank",
    "bam/fullrank",
    "bam/lowrank",
    "pathfinder/fullrank",
    "advi/meanfield",
    "advi/fullrank",
    "auto/flow",
)
SVI_LRS = (0.003, 0.001, 0.01, 0.0003, 0.03, 0.1)  # middle out (pruning); constant Adam jitters by ~lr
NUTS_WARMUPS = (100, 300, 1000)
PATHFINDER_MAXITERS = (30, 100, 1000)
CHAINS, NUTS_CHUNK, SVI_CHUNK, DRAWS = 4, 25, 100, 4000
PATHFINDER_DRAWS = 200  # per path, Blackjax's default (used for its ELBO and for the importance-weighted draws)
MAX_PATHS = 64


def accurate(max_err: float, sd_min: float, sd_max: float) -> bool:
    return max_err <= TARGET_ERR and SD_RANGE[0] <= sd_min and sd_max <= SD_RANGE[1]


@dataclass
class Checkpoint:
    work: int  # SVI steps / NUTS draws per chain after warm-up / Pathfinder paths / 1 for a varinf fit
    wall: float  # seconds charged to reach this checkpoint
    cpu: float
    compile: float  # of which JAX lowering + XLA compilation (wall seconds, from JAX's compile events)
    max_err: float
    sd_min: float
    sd_max: float
    grad_evals: int = 0

    @property
    def ok(self) -> bool:
        return accurate(self.max_err, self.sd_min, self.sd_max)


@dataclass
class Setting:
    name: str  # "lr 0.01", "warm-up 300", "maxiter 100", "auto/auto"
    budget_cpu: float
    checkpoints: list[Checkpoint] = field(default_factory=list)
    stopped: str = ""  # "accurate" | "budget" | "done" (ran its course) | "error"
    error: str = ""
    info: dict = field(default_factory=dict)


@dataclass
class SystemResult:
    system: str
    posterior: str
    dim: int
    budget_cpu: float
    settings: list[Setting] = field(default_factory=list)


class Clock:
    """Charged wall and CPU seconds, running only inside ``with clock:`` blocks; JAX compile seconds within them
    apart (from JAX's compile events)."""

    def __init__(self):
        self.wall = self.cpu = self.compile = 0.0

    def __enter__(self):
        self._t = (time.perf_counter(), time.process_time(), COMPILE[0])
        return self

    def __exit__(self, *exc):
        self.wall += time.perf_counter() - self._t[0]
        self.cpu += time.process_time() - self._t[1]
        self.compile += COMPILE[0] - self._t[2]


COMPILE = [0.0]  # JAX compile seconds so far in this process (lowering to MLIR + XLA's compilation)
# Tracing is left out: nested traces report overlapping durations; it is a small part (< 1 s here).
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_to_mlir_module_duration", "/jax/core/compile/backend_compile_duration")


def _count_compile(name: str, seconds: float, **_) -> None:
    if name in COMPILE_EVENTS:
        COMPILE[0] += seconds


def compare(model, post, z: dict, weights=None) -> tuple[float, float, float]:
    """(max |mean error| in reference sds, min sd ratio, max sd ratio) of constrained draws ``z`` (optionally
    weighted by normalized ``weights``)."""
    from varinf.posteriordb import compare_to_reference

    zt = {lat.name: torch.as_tensor(np.asarray(z[lat.name]), dtype=torch.float64) for lat in model.latents}
    with torch.no_grad():
        qty = model.reference_quantities(zt)
    w = None if weights is None else torch.as_tensor(np.asarray(weights), dtype=torch.float64)
    c = compare_to_reference(qty, post.reference, model.reference_names, weights=w)
    return c.max_mean_error, c.min_sd_ratio, c.max_sd_ratio


def checkpoint(clock: Clock, work: int, errs: tuple[float, float, float], grad_evals: int = 0) -> Checkpoint:
    return Checkpoint(work, clock.wall, clock.cpu, clock.compile, *errs, grad_evals=grad_evals)


def _error(e: BaseException) -> str:
    traceback.print_exc()
    return f"{type(e).__name__}: {e}".splitlines()[0][:200]


# ----------------------------------------------------------------------------------------------- varinf
def run_varinf(post, budget: float) -> list[Setting]:
    """Each method/family fit as a user calls it: ``varinf.fit(model, family, method=..., dtype=float64)``."""
    import varinf
    from varinf import Latent, Model
    from varinf.diagnostics import DiagnosticWarning
    from varinf.optim import ConvergenceWarning
    from varinf.posteriordb import compare_to_reference

    warm = Model([Latent("x")], lambda x: -0.5 * x**2, vectorized=True)  # torch's one-time start-up, not charged
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        varinf.fit(warm, dtype=torch.float64, seed=0, progress=False)
    out = []
    for fit in VARINF_FITS:
        method, family = fit.split("/")
        model = post.model()
        s = Setting(fit, budget)
        kw = {"max_steps": 500} if fit == "bam/lowrank" else {}  # its fixed point can wander: cap it
        clock = Clock()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with clock:
                    res = varinf.fit(model, family, method=method, dtype=torch.float64, seed=0, progress=False, **kw)
        except Exception as e:  # a failed fit is a result too
            s.stopped, s.error = "error", _error(e)
            s.info["wall"], s.info["cpu"] = clock.wall, clock.cpu
            out.append(s)
            continue
        kinds = sorted(
            {w.category.__name__ for w in caught if issubclass(w.category, DiagnosticWarning | ConvergenceWarning)}
        )
        d = res.diagnostics
        with torch.no_grad():
            qty = model.reference_quantities(d.draws)
        raw = compare_to_reference(qty, post.reference, model.reference_names)
        psis = compare_to_reference(qty, post.reference, model.reference_names, weights=d.psis.weights)
        rep = psis if res.psis_corrected else raw  # the estimates the summary reports
        errs = (rep.max_mean_error, rep.min_sd_ratio, rep.max_sd_ratio)
        s.checkpoints.append(checkpoint(clock, 1, errs, int(res.grad_evals)))
        s.stopped = "accurate" if s.checkpoints[-1].ok else "done"
        s.info = {
            "route": " -> ".join(res.route) if res.route else res.method,
            "grad_evals": int(res.grad_evals),
            "density_evals": int(res.density_evals),
            "q_err": raw.max_mean_error,
            "q_sd": [raw.min_sd_ratio, raw.max_sd_ratio],
            "psis_err": psis.max_mean_error,
            "khat": float(d.khat),
            "corrected": bool(res.psis_corrected),
            "warned": ",".join(kinds),
            "converged": bool(res.converged),
            "fit_wall": float(res.wall_time),
        }
        out.append(s)
        print(
            f"{post.name} {fit}: {clock.cpu:.2f} CPU s, err {errs[0]:.3f}, sd {errs[1]:.2f}-{errs[2]:.2f}", flush=True
        )
    return out


# ----------------------------------------------------------------------------------------------- JAX peers
def _jax():
    import jax
    import jax.monitoring

    jax.config.update("jax_enable_x64", True)
    jax.monitoring.register_event_duration_secs_listener(_count_compile)
    jax.block_until_ready(jax.jit(lambda x: x + 1)(jax.numpy.zeros(2)))  # the backend's start-up, not charged
    COMPILE[0] = 0.0
    return jax


def _geometric(start: int, factors=(2, 2.5, 2)):
    """start, then 1-2-5 style growth (100, 200, 500, 1000, ...) for factors (2, 2.5, 2)."""
    n, i = start, 0
    while True:
        yield round(n)
        n *= factors[i % len(factors)]
        i += 1


def sweep(post, system: str, names: list[str], one, budget: float) -> list[Setting]:
    """Run ``one(name, setting, clock)`` for each setting in turn (JAX's caches cleared before each), each with the
    budget ``min(budget, best CPU time so far)``; a setting that fails is recorded with its error."""
    import jax

    out, best = [], budget
    for name in names:
        jax.clear_caches()
        s, clock = Setting(name, best), Clock()
        try:
            one(s, clock)
        except Exception as e:
            s.stopped, s.error = "error", _error(e)
        s.info.update(wall=clock.wall, cpu=clock.cpu, compile=clock.compile)
        out.append(s)
        if s.stopped == "accurate":
            best = min(best, s.checkpoints[-1].cpu)
        _progress(post, system, s)
    return out


def _check(s: Setting, clock: Clock, cp: Checkpoint | None) -> bool:
    """Record checkpoint ``cp`` (if any); True when the setting stops here (accurate, or out of budget)."""
    if cp is not None:
        s.checkpoints.append(cp)
        if cp.ok:
            s.stopped = "accurate"
            return True
    if clock.cpu >= s.budget_cpu:
        s.stopped = "budget"
        return True
    return False


def run_svi(post, guide_name: str, budget: float) -> list[Setting]:
    """NumPyro SVI with its defaults (``init_to_uniform``, init_scale 0.1, Trace_ELBO with 1 particle), Adam at each
    learning rate; steps in jitted chunks of 100, checked after 100, 200, 500, 1000, 2000, 5000, ... steps."""
    _jax()
    model = post.model()
    names = [f"lr {lr:g}" for lr in SVI_LRS]
    one = lambda s, clock: _svi(post, model, guide_name, float(s.name.split()[1]), s, clock)
    return sweep(post, f"svi-{guide_name}", names, one, budget)


def _svi(post, model, guide_name: str, lr: float, s: Setting, clock: Clock) -> None:
    import jax
    import numpyro
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoMultivariateNormal, AutoNormal

    from numpyro_posteriors import numpyro_model

    with clock:
        np_model = numpyro_model(post, model)
        guide = {"AutoNormal": AutoNormal, "AutoMultivariateNormal": AutoMultivariateNormal}[guide_name](np_model)
        svi = SVI(np_model, guide, numpyro.optim.Adam(lr), Trace_ELBO())
        state = svi.init(jax.random.PRNGKey(0))
        chunk = jax.jit(lambda st: jax.lax.scan(lambda c, _: svi.update(c), st, None, length=SVI_CHUNK))
    steps, marks = 0, _geometric(SVI_CHUNK)
    mark = next(marks)
    while True:
        with clock:
            state, losses = chunk(state)
            jax.block_until_ready(state)
        steps += SVI_CHUNK
        cp = None
        if steps >= mark:
            mark = next(marks)
            z = guide.sample_posterior(jax.random.PRNGKey(steps), svi.get_params(state), sample_shape=(DRAWS,))
            cp = checkpoint(clock, steps, compare(model, post, z), steps)
            s.info["final_loss"] = float(np.asarray(losses)[-1])
        if _check(s, clock, cp):
            return


def run_nuts(post, budget: float) -> list[Setting]:
    """NumPyro NUTS with its defaults (diagonal mass matrix, target acceptance 0.8, tree depth 10, init_to_uniform),
    4 chains advanced in turn (NumPyro's 'sequential' on one core), the kernel jitted over chunks of 25 iterations.
    Each warm-up length is a setting; draws checked after 25, 50, 100, ... per chain."""
    _jax()
    model = post.model()
    names = [f"warm-up {w}" for w in NUTS_WARMUPS]
    return sweep(post, "nuts", names, lambda s, clock: _nuts(post, model, int(s.name.split()[1]), s, clock), budget)


def _nuts(post, model, warmup: int, s: Setting, clock: Clock) -> None:
    import jax
    from numpyro.infer.hmc import hmc
    from numpyro.infer.util import initialize_model

    from numpyro_posteriors import numpyro_model

    with clock:
        np_model = numpyro_model(post, model)
        keys = jax.random.split(jax.random.PRNGKey(0), 2 * CHAINS)
        info = initialize_model(keys[:CHAINS], np_model)
        init_kernel, sample_kernel = hmc(info.potential_fn, algo="NUTS")
        states = []
        for c in range(CHAINS):
            z0 = jax.tree_util.tree_map(lambda a, c=c: a[c], info.param_info.z)
            states.append(init_kernel(z0, num_warmup=warmup, rng_key=keys[CHAINS + c]))

        def body(st, _):
            st = sample_kernel(st)
            return st, (st.z, st.num_steps, st.diverging)

        chunk = jax.jit(lambda st: jax.lax.scan(body, st, None, length=NUTS_CHUNK))
    grad = 0
    for _ in range(warmup // NUTS_CHUNK):
        with clock:
            for c in range(CHAINS):
                states[c], (_, steps, _) = chunk(states[c])
                grad += int(np.asarray(steps).sum())
        if _check(s, clock, None):
            return
    s.info["warmup_grad_evals"] = grad
    draws: list = []
    divergent, n, marks = 0, 0, _geometric(NUTS_CHUNK, (2,))
    mark = next(marks)
    post_fn = jax.jit(jax.vmap(info.postprocess_fn))
    while True:
        with clock:
            for c in range(CHAINS):
                states[c], (z, steps, div) = chunk(states[c])
                draws.append(z)
                grad += int(np.asarray(steps).sum())
                divergent += int(np.asarray(div).sum())
        n += NUTS_CHUNK
        cp = None
        if n >= mark:
            mark = next(marks)
            flat = jax.tree_util.tree_map(lambda *a: np.concatenate(a), *draws)
            cp = checkpoint(clock, n, compare(model, post, post_fn(flat)), grad)
            s.info["divergent"] = divergent
        if _check(s, clock, cp):
            return


def run_pathfinder(post, budget: float) -> list[Setting]:
    """Blackjax multi-path Pathfinder: paths from independent uniform(-2, 2) starts (unconstrained), each L-BFGS
    path's best Gaussian gives 200 draws (Blackjax's default), pooled over paths and weighted by PSIS (Blackjax's
    ``psis_weights``, as ``blackjax.vi.multipathfinder`` does). Each L-BFGS iteration cap is a setting; checked
    after 1, 2, 4, ... paths."""
    _jax()
    model = post.model()
    names = [f"maxiter {m}" for m in PATHFINDER_MAXITERS]
    one = lambda s, clock: _pathfinder(post, model, int(s.name.split()[1]), s, clock)
    return sweep(post, "pathfinder", names, one, budget)


def _pathfinder(post, model, maxiter: int, s: Setting, clock: Clock) -> None:
    import jax
    import jax.numpy as jnp
    from blackjax.diagnostics import psis_weights
    from blackjax.vi.pathfinder import approximate, sample
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    from numpyro_posteriors import numpyro_model

    with clock:
        np_model = numpyro_model(post, model)
        info = initialize_model(jax.random.PRNGKey(0), np_model)
        flat0, unravel = ravel_pytree(info.param_info.z)
        logdensity = lambda x: -info.potential_fn(unravel(x))

        def one_path(key):
            k0, k1, k2 = jax.random.split(key, 3)
            x0 = jax.random.uniform(k0, flat0.shape, minval=-2.0, maxval=2.0)
            state, pinfo = approximate(k1, logdensity, x0, PATHFINDER_DRAWS, maxiter=maxiter)
            x, logq = sample(k2, state, PATHFINDER_DRAWS)
            logp = jax.vmap(logdensity)(x)
            iters = jnp.isfinite(pinfo.path.elbo).sum()
            return x, jnp.where(jnp.isfinite(logp), logp - logq, -jnp.inf), iters

        path = jax.jit(one_path)
    xs, lws, iters, keys = [], [], 0, jax.random.split(jax.random.PRNGKey(1), MAX_PATHS)
    for k in range(1, MAX_PATHS + 1):
        with clock:
            x, lw, it = path(keys[k - 1])
            xs.append(x)
            lws.append(lw)
            iters += int(it)
        cp = None
        if k & (k - 1) == 0:  # a power of two: a checkpoint. Its PSIS weighting is charged to it alone (a user
            weighing = Clock()  # running k paths weighs once, compiling PSIS for k paths once)
            with weighing:
                logw, khat = psis_weights(jnp.concatenate(lws))
                jax.block_until_ready(logw)
            z = jax.vmap(info.postprocess_fn)(jax.vmap(unravel)(jnp.concatenate(xs)))
            w = np.exp(np.asarray(logw, dtype=np.float64))
            errs = compare(model, post, z, w / w.sum())
            cp = Checkpoint(k, clock.wall + weighing.wall, clock.cpu + weighing.cpu, clock.compile + weighing.compile,
                            *errs, grad_evals=iters)  # fmt: skip
            s.info["khat"] = float(khat)
        if _check(s, clock, cp):
            return
    s.stopped = "done"


# ----------------------------------------------------------------------------------------------- logistic regression
def _aten_calls(step_fn) -> tuple[float, float]:
    """(top-level, all) ATen operator calls per call of ``step_fn`` (torch.profiler, 10 calls)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(10):
            step_fn()
    ev = [e for e in prof.events() if e.name.startswith("aten::")]
    top = [e for e in ev if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")]
    return len(top) / 10, len(ev) / 10


def _not_fused():
    raise RuntimeError("gaussian_step.fused_step does not apply to a mean-field ELBO step on LogisticRegression")


def logreg_steps(n: int, d: int, steps: int, repeats: int = 5) -> dict:
    """ms per mean-field ADVI step on a synthetic logistic regression, both libraries in float32 (JAX x64 off, torch
    float32; checked): NumPyro's warm jitted step (``lax.scan`` of ``svi.update``) against varinf's generic autograd
    ``step`` and ADVI's fused Gaussian step (``gaussian_step.fused_step``), with varinf's ATen calls per step. Repeats interleaved;
    medians of per-step CPU and wall times."""
    import statistics

    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal

    import varinf.optim.gaussian_step as gs
    from varinf.families import MeanField
    from varinf.models import LogisticRegression
    from varinf.models.model import Model, distribution_validation
    from varinf.objectives import ELBO
    from varinf.optim import LeanAdam, step

    assert not jax.config.jax_enable_x64
    torch.set_default_dtype(torch.float32)
    m = LogisticRegression.synthetic(n=n, d=d)
    X, y = (jnp.asarray(m.data[k].numpy()) for k in ("X", "y"))

    def np_model():
        beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([d]).to_event(1))
        alpha = numpyro.sample("alpha", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Bernoulli(logits=X @ beta + alpha), obs=y)

    svi = SVI(np_model, AutoNormal(np_model), numpyro.optim.Adam(0.01), Trace_ELBO())
    state0 = svi.init(jax.random.PRNGKey(0))
    run = jax.jit(lambda st: jax.lax.scan(lambda c, _: svi.update(c), st, None, length=steps))
    warm = jax.block_until_ready(run(state0))
    dtypes = {"numpyro": str(svi.get_params(warm[0])["beta_auto_loc"].dtype), "varinf": None}

    def numpyro_ms():
        with Clock() as t:
            jax.block_until_ready(run(state0))
        return t

    def varinf_ms(fused: bool):
        fam = MeanField(m.dim)
        dtypes["varinf"] = str(next(fam.parameters()).dtype).removeprefix("torch.")
        opt, obj = LeanAdam(list(fam.parameters()), lr=0.01), ELBO()
        if fused:  # ADVI's closed-form Gaussian step (None would mean it does not apply: refuse to time that)
            one = lambda: gs.fused_step(m.log_density, fam, obj, opt) or _not_fused()
        else:  # the generic path: autograd through the model, the family and the ELBO
            one = lambda: step(lambda u: Model.log_density(m, u), fam, obj, opt)
        with distribution_validation(False):
            for _ in range(30):
                one()
            with Clock() as t:
                for _ in range(steps):
                    one()
            ops = _aten_calls(one)
        return t, ops

    names = ("numpyro", "varinf generic (before)", "varinf fused (after)")
    times, ops = {k: [] for k in names}, {}
    for _ in range(repeats):  # interleaved: the machine is shared
        times["numpyro"].append(numpyro_ms())
        t, ops["before"] = varinf_ms(False)
        times["varinf generic (before)"].append(t)
        t, ops["after"] = varinf_ms(True)
        times["varinf fused (after)"].append(t)
    torch.set_default_dtype(torch.float64)
    ms = lambda k, attr: statistics.median(getattr(t, attr) for t in times[k]) / steps * 1e3
    cpu = {k: ms(k, "cpu") for k in names}
    return {
        "n": n,
        "d": d,
        "steps": steps,
        "repeats": repeats,
        "dtypes": dtypes,
        "ms_per_step_cpu": cpu,
        "ms_per_step_wall": {k: ms(k, "wall") for k in names},
        "ratio_to_numpyro_cpu": {k: v / cpu["numpyro"] for k, v in cpu.items()},
        "aten_ops_per_step": {k: {"top_level": v[0], "all": v[1]} for k, v in ops.items()},
    }


def _progress(post, system: str, s: Setting) -> None:
    last = s.checkpoints[-1] if s.checkpoints else None
    tail = f"err {last.max_err:.3f} sd {last.sd_min:.2f}-{last.sd_max:.2f} at {last.work}" if last else ""
    print(f"{post.name} {system} {s.name}: {s.stopped} {s.info.get('cpu', 0):.1f} CPU s {tail} {s.error}", flush=True)


SYSTEMS = {
    "varinf": run_varinf,
    "nuts": run_nuts,
    "svi-AutoNormal": lambda post, budget: run_svi(post, "AutoNormal", budget),
    "svi-AutoMultivariateNormal": lambda post, budget: run_svi(post, "AutoMultivariateNormal", budget),
    "pathfinder": run_pathfinder,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("system", choices=[*SYSTEMS, "logreg"])
    ap.add_argument("posterior", help="a posteriordb name; for logreg: N,D,STEPS")
    ap.add_argument("--budget", type=float, default=30.0, help="CPU seconds per setting")
    ap.add_argument("--result", required=True)
    args = ap.parse_args(argv)
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    if args.system == "logreg":
        out = logreg_steps(*map(int, args.posterior.split(",")))
    else:
        from varinf.posteriordb import load_posterior

        post = load_posterior(args.posterior)
        res = SystemResult(args.system, post.name, post.model().dim, args.budget)
        res.settings = SYSTEMS[args.system](post, args.budget)
        out = asdict(res)
    with open(args.result, "w") as f:
        json.dump(out, f, allow_nan=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
