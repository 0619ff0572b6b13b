"""Posterior speed: varinf's fitting methods against NumPyro SVI and Blackjax Pathfinder, in one run.

For each of the 16 posteriordb posteriors with reference draws (../shared/data/posteriordb):

- varinf ``method`` x ``family``: auto (default family = full rank; mean-field, low rank, flow), bam (full, low
  rank), pathfinder, advi (mean-field, full rank). Each is ``varinf.fit(model, family, method=...)`` as a user
  calls it, float64, seed 0; the wall time includes initialization and the diagnostics (4000 draws, PSIS).
- peers, same process, one thread: NumPyro SVI AutoNormal and AutoMultivariateNormal (5000 Adam steps at 0.01,
  1 particle, start at 0 in unconstrained space, init scale 0.1; total = model set-up + tracing/compilation +
  the jitted loop) and Blackjax Pathfinder (single path, its defaults: ``maxiter`` 30, 200 ELBO draws per path
  point; total = set-up + compilation + run + 4000 draws).

Reported per fit: gradient evaluations (density evaluations without gradients apart), wall time, max error of
the posterior means in reference sds and the range of sd ratios of the estimates *as reported* (varinf's summary:
PSIS-corrected when the method asks for it and k-hat < 0.7, else q's own; peers: their draws), q's own error,
PSIS k-hat (every library's q in its own unconstrained space), and whether a warning was raised. A fit with
error > 0.1 sd and no warning is a *silent failure*.

Also: logistic regression (10,000 x 20 and 100,000 x 100, float32) ms per ADVI step against NumPyro's warm
compiled step, with the ATen call counts of varinf's step (torch.profiler) on the generic path (before) and the
fused Gaussian path (after); and ``varinf fit eight_schools`` as a whole process on one core.

Run (CPU shared: one core, niced, in the background; about an hour):
  OMP_NUM_THREADS=1 nice -n 5 taskset -c 0 python benchmarks/posterior_speed.py
  ... --posteriors arK-arK --fits auto/fullrank numpyro/AutoNormal     (a subset)   --resume   --report-only
Writes benchmarks/results/posterior_speed.{json,md} (rewritten after every fit). Never imported by the package.
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse
import json
import math
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

import varinf
from provenance import git_commit
from varinf.diagnostics import DiagnosticWarning
from varinf.diagnostics.pareto import pareto_smooth
from varinf.optim import ConvergenceWarning
from varinf.posteriordb import REFERENCE_POSTERIORS, compare_to_reference, load_posterior

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_ERR = 0.1
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
PEER_FITS = ("numpyro/AutoNormal", "numpyro/AutoMultivariateNormal", "blackjax/pathfinder")
DEFAULT_FIT = "auto/auto"


@dataclass
class Row:
    posterior: str
    fit: str  # "library-or-method/family-or-guide"
    dim: int
    grad_evals: int = 0
    density_evals: int = 0
    wall: float = math.nan
    compile: float = math.nan
    max_err: float = math.nan  # the estimates as reported
    sd_min: float = math.nan
    sd_max: float = math.nan
    q_err: float = math.nan  # q's own draws
    psis_err: float = math.nan
    khat: float = math.nan
    corrected: bool = False
    warned: str = ""
    converged: bool = True
    route: str = ""
    error: str = ""

    @property
    def goal(self) -> str:
        if self.error:
            return "failed"
        if self.max_err <= TARGET_ERR:
            return "ok"
        if self.fit in PEER_FITS:
            return "inaccurate (no diagnostics)"
        return "flagged" if self.warned else "SILENT FAILURE"


# ----------------------------------------------------------------------------------------------- varinf
def run_varinf(name: str, fit: str) -> Row:
    post = load_posterior(name)
    model = post.model()
    method, family = fit.split("/")
    row = Row(name, fit, model.dim)
    kw = {"max_steps": 500} if fit == "bam/lowrank" else {}  # its fixed point can wander: cap it
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = varinf.fit(model, family, method=method, dtype=torch.float64, seed=0, progress=False, **kw)
    except Exception as e:  # a failed fit is a result too
        row.error, row.wall = f"{type(e).__name__}: {e}".splitlines()[0][:200], time.perf_counter() - t0
        traceback.print_exc()
        return row
    row.wall = time.perf_counter() - t0
    kinds = sorted({w.category.__name__ for w in caught if issubclass(w.category, DiagnosticWarning | ConvergenceWarning)})
    row.warned = ",".join(kinds)
    d = res.diagnostics
    with torch.no_grad():
        qty = model.reference_quantities(d.draws)
    raw = compare_to_reference(qty, post.reference, model.reference_names)
    psis = compare_to_reference(qty, post.reference, model.reference_names, weights=d.psis.weights)
    rep = psis if res.psis_corrected else raw
    row.max_err, row.sd_min, row.sd_max = rep.max_mean_error, rep.min_sd_ratio, rep.max_sd_ratio
    row.q_err, row.psis_err, row.khat, row.corrected = raw.max_mean_error, psis.max_mean_error, d.khat, res.psis_corrected
    row.grad_evals, row.density_evals, row.converged = res.grad_evals, res.density_evals, bool(res.converged)
    row.route = " -> ".join(res.route) if res.route else res.method
    return row


# ----------------------------------------------------------------------------------------------- peers
def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def _peer_compare(model, post, z: dict) -> tuple:
    zt = {lat.name: torch.as_tensor(np.asarray(z[lat.name]), dtype=torch.float64) for lat in model.latents}
    with torch.no_grad():
        qty = model.reference_quantities(zt)
    c = compare_to_reference(qty, post.reference, model.reference_names)
    return c.max_mean_error, c.min_sd_ratio, c.max_sd_ratio


def _khat(log_p, log_q) -> float:
    lw = torch.as_tensor(np.asarray(log_p) - np.asarray(log_q), dtype=torch.float64)
    lw = torch.where(torch.isfinite(lw), lw, torch.full_like(lw, -math.inf))
    return pareto_smooth(lw)[1]


def run_numpyro(name: str, guide_name: str, steps: int = 5000, lr: float = 0.01) -> Row:
    jax = _jax()
    import numpyro
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoMultivariateNormal, AutoNormal
    from numpyro.infer.initialization import init_to_uniform
    from numpyro.infer.util import initialize_model

    from numpyro_posteriors import numpyro_model

    post = load_posterior(name)
    model = post.model()
    row = Row(name, f"numpyro/{guide_name}", model.dim, grad_evals=steps)
    try:
        t0 = time.perf_counter()
        np_model = numpyro_model(post, model)
        guide_cls = {"AutoNormal": AutoNormal, "AutoMultivariateNormal": AutoMultivariateNormal}[guide_name]
        guide = guide_cls(np_model, init_loc_fn=init_to_uniform(radius=0.0), init_scale=0.1)
        svi = SVI(np_model, guide, numpyro.optim.Adam(lr), Trace_ELBO())
        key = jax.random.PRNGKey(0)
        state = svi.init(key)
        loop = jax.jit(lambda s: jax.lax.fori_loop(0, steps, lambda i, s: svi.update(s)[0], s))
        compiled = loop.lower(state).compile()
        row.compile = time.perf_counter() - t0
        final = jax.block_until_ready(compiled(state))
        row.wall = time.perf_counter() - t0
        params = svi.get_params(final)
        # draws in NumPyro's unconstrained space, their log q, and the model's potential there (for k-hat)
        info = initialize_model(jax.random.PRNGKey(1), np_model)
        potential, post_fn = info.potential_fn, info.postprocess_fn
        u, log_q = _guide_draws(jax, guide, guide_name, params, info.param_info.z, 4000)
        log_p = -jax.vmap(potential)(u)
        z = jax.vmap(post_fn)(u)
        row.max_err, row.sd_min, row.sd_max = _peer_compare(model, post, z)
        row.q_err, row.khat = row.max_err, _khat(log_p, log_q)
    except Exception as e:
        row.error = f"{type(e).__name__}: {e}".splitlines()[0][:200]
        traceback.print_exc()
    return row


def _guide_draws(jax, guide, guide_name, params, z0, n):
    """n draws of the fitted guide in the unconstrained space (a dict like ``z0``) and their log density."""
    import jax.numpy as jnp
    import numpyro.distributions as dist

    key = jax.random.PRNGKey(2)
    if guide_name == "AutoMultivariateNormal":
        q = guide.get_posterior(params)
        flat = q.sample(key, (n,))
        return jax.vmap(guide._unpack_latent)(flat), q.log_prob(flat)
    u, lq = {}, jnp.zeros(n)
    for i, site in enumerate(sorted(z0)):
        q = dist.Normal(params[f"{site}_auto_loc"], params[f"{site}_auto_scale"])
        x = q.sample(jax.random.fold_in(key, i), (n,))
        u[site] = x
        lq = lq + q.log_prob(x).reshape(n, -1).sum(-1)
    return u, lq


def run_blackjax(name: str, maxiter: int = 30) -> Row:
    jax = _jax()
    import blackjax
    import jax.numpy as jnp
    from blackjax.optimizers.lbfgs import bfgs_sample
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    from numpyro_posteriors import numpyro_model

    post = load_posterior(name)
    model = post.model()
    row = Row(name, "blackjax/pathfinder", model.dim)
    try:
        t0 = time.perf_counter()
        np_model = numpyro_model(post, model)
        info = initialize_model(jax.random.PRNGKey(0), np_model)
        z0 = jax.tree_util.tree_map(jnp.zeros_like, info.param_info.z)  # start at 0, as varinf and NumPyro do
        flat0, unravel = ravel_pytree(z0)
        logdensity = lambda x: -info.potential_fn(unravel(x))
        approx = jax.jit(lambda k, x: blackjax.vi.pathfinder.approximate(k, logdensity, x, maxiter=maxiter))
        state, pinfo = approx(jax.random.PRNGKey(1), flat0)
        jax.block_until_ready(state)
        flat, log_q = bfgs_sample(jax.random.PRNGKey(2), 4000, state.position, state.grad_position, state.alpha,
                                  state.beta, state.gamma)  # fmt: skip
        jax.block_until_ready(flat)
        row.wall = time.perf_counter() - t0
        # iterations with a usable point: at least one evaluation each (line-search extras are not exposed)
        row.grad_evals = int(np.isfinite(np.asarray(pinfo.path.elbo)).sum())
        row.density_evals = int(np.asarray(pinfo.path.elbo).shape[0]) * 200  # ELBO draws at every path point
        u = jax.vmap(unravel)(flat)
        log_p = jax.vmap(logdensity)(flat)
        row.max_err, row.sd_min, row.sd_max = _peer_compare(model, post, jax.vmap(info.postprocess_fn)(u))
        row.q_err, row.khat = row.max_err, _khat(log_p, log_q)
    except Exception as e:
        row.error = f"{type(e).__name__}: {e}".splitlines()[0][:200]
        traceback.print_exc()
    return row


def warm_up_jax() -> None:
    """JAX's one-time start-up (backend, first compilation) is paid here, not by the first posterior."""
    jax = _jax()
    jax.block_until_ready(jax.jit(lambda x: (x * 2).sum())(jax.numpy.ones(3)))


# ----------------------------------------------------------------------------------------------- logistic regression
def _step_ops(step_fn) -> tuple[float, float]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(10):
            step_fn()
    ev = [e for e in prof.events() if e.name.startswith("aten::")]
    top = [e for e in ev if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")]
    return len(top) / 10, len(ev) / 10


def logreg(n: int, d: int, steps: int = 1000, repeats: int = 5) -> dict:
    jax = _jax()
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

    torch.set_default_dtype(torch.float32)
    m = LogisticRegression.synthetic(n=n, d=d)
    X, y = (jnp.asarray(m.data[k].numpy(), dtype=jnp.float32) for k in ("X", "y"))

    def np_model():
        beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([d]).to_event(1))
        alpha = numpyro.sample("alpha", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Bernoulli(logits=X @ beta + alpha), obs=y)

    svi = SVI(np_model, AutoNormal(np_model), numpyro.optim.Adam(0.01), Trace_ELBO())
    state0 = svi.init(jax.random.PRNGKey(0))
    run = jax.jit(lambda s: jax.lax.scan(lambda s, _: svi.update(s), s, None, length=steps))
    jax.block_until_ready(run(state0))

    def numpyro_ms():
        t = time.perf_counter()
        jax.block_until_ready(run(state0))
        return (time.perf_counter() - t) / steps * 1e3

    def varinf_ms(fused: bool):
        fam = MeanField(m.dim)
        opt, obj = LeanAdam(list(fam.parameters()), lr=0.01), ELBO()
        log_p = m.log_density if fused else (lambda u: Model.log_density(m, u))
        orig = gs.fused_step
        if not fused:
            gs.fused_step = lambda *a: None  # the generic path: autograd through the family and the ELBO
        try:
            with distribution_validation(False):
                one = lambda: step(log_p, fam, obj, opt)
                for _ in range(30):
                    one()
                t = time.perf_counter()
                for _ in range(steps):
                    one()
                ms = (time.perf_counter() - t) / steps * 1e3
                ops = _step_ops(one)
        finally:
            gs.fused_step = orig
        return ms, ops

    times = {"numpyro": [], "varinf generic (before)": [], "varinf fused (after)": []}
    ops = {}
    for _ in range(repeats):  # interleaved, best of: the machine is shared
        times["numpyro"].append(numpyro_ms())
        ms, ops["before"] = varinf_ms(False)
        times["varinf generic (before)"].append(ms)
        ms, ops["after"] = varinf_ms(True)
        times["varinf fused (after)"].append(ms)
    torch.set_default_dtype(torch.float64)
    best = {k: min(v) for k, v in times.items()}
    return {"n": n, "d": d, "ms_per_step": best, "ratio_to_numpyro": {k: v / best["numpyro"] for k, v in best.items()},
            "aten_ops_per_step": {k: {"top_level": v[0], "all": v[1]} for k, v in ops.items()}}  # fmt: skip


# ----------------------------------------------------------------------------------------------- the README command
def eight_schools_cli(repeats: int = 5) -> dict:
    """``varinf fit eight_schools`` as a whole process on one core; its summary means vs posteriordb's reference."""
    post = load_posterior("eight_schools-eight_schools_noncentered")
    ref = dict(zip(post.reference.names, zip(post.reference.mean, post.reference.sd)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "varinf", "fit", "eight_schools"]  # no bar: not a terminal
    walls, cpus, out = [], [], ""
    for _ in range(repeats):
        t, c = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        walls.append(time.perf_counter() - t)
        c2 = resource.getrusage(resource.RUSAGE_CHILDREN)  # user + sys CPU: robust where other jobs share the core
        cpus.append(c2.ru_utime - c.ru_utime + c2.ru_stime - c.ru_stime)
        out = r.stdout + r.stderr
    means = {}  # the summary's mu, tau and theta[j] (0-based; posteriordb's are 1-based); theta_tilde has no reference
    for line in out.splitlines():
        m = re.match(r"^(mu|tau|theta\[(\d)\])\s+(-?[\d.e+-]+)\s", line)
        if m:
            means[f"theta[{int(m.group(2)) + 1}]" if m.group(2) else m.group(1)] = float(m.group(3))
    errs = {k: abs(v - ref[k][0]) / ref[k][1] for k, v in means.items()}
    return {"wall_median": statistics.median(walls), "walls": walls, "cpu_median": statistics.median(cpus),
            "cpus": cpus, "max_err": max(errs.values()), "errors": errs,
            "warning_printed": "WARNING" in out or "Warning" in out, "khat_line": next(
                (ln for ln in out.splitlines() if ln.startswith("PSIS k-hat")), ""), "header": out.splitlines()[0]}  # fmt: skip


# ----------------------------------------------------------------------------------------------- report
def _fmt(x, spec=".3f") -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def markdown(rows: list[Row], extra: dict, meta: dict) -> str:
    fits = list(dict.fromkeys(r.fit for r in rows))
    lines = [
        "# Posterior speed: varinf methods vs NumPyro SVI and Blackjax Pathfinder (posteriordb)",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; torch {meta['torch']}, jax {meta.get('jax', '?')}, numpyro "
        f"{meta.get('numpyro', '?')}, blackjax {meta.get('blackjax', '?')}; varinf at commit {meta['commit']}; one "
        "thread each, one process, a shared CPU (times are noisy; ratios within the run are what counts)"
        + "".join(f"; rerun `{r['command']}` at commit {r['commit']}" for r in meta.get("reruns", [])) + ".  ",
        "err = max over reference quantities of |mean − reference mean| / reference sd of the estimates *as "
        "reported* (varinf: PSIS-corrected when the method asks for it and k̂ ≤ 0.7, marked *; otherwise q's own); "
        "q err = q's own draws; sd = min–max of sd / reference sd (as reported); k̂ = PSIS k̂ of q in its own "
        "library's unconstrained space; grad = gradient evaluations (Blackjax: L-BFGS iterations, a lower bound); "
        "s = wall seconds including set-up, compilation (peers) and varinf's diagnostics; warn = warnings raised; "
        "SILENT FAILURE = err > 0.1 with no warning.",
        "",
    ]
    if extra.get("note"):
        lines += [extra["note"], ""]
    summary = extra.get("summary", {})
    if summary:
        lines += ["## Goals", ""] + [f"- {s}" for s in summary.get("lines", [])] + [""]
    lines += ["## Per posterior", "", "| posterior | d | fit | route | grad | s | err | q err | sd | k̂ | warn | goal |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        err = _fmt(r.max_err) + ("*" if r.corrected else "")
        lines.append(
            f"| {r.posterior} | {r.dim} | {r.fit} | {r.route} | {r.grad_evals} | {_fmt(r.wall, '.2f')} | {err} "
            f"| {_fmt(r.q_err)} | {_fmt(r.sd_min, '.2f')}–{_fmt(r.sd_max, '.2f')} | {_fmt(r.khat, '.2f')} "
            f"| {r.warned or '—'}{'' if r.converged else ' (not converged)'} | {r.goal}{' — ' + r.error if r.error else ''} |"
        )
    lines += ["", "## Per fit (medians over posteriors)", "", "| fit | median grad | median s | ok | flagged | silent | failed |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for f in fits:
        rs = [r for r in rows if r.fit == f]
        good = [r for r in rs if not r.error]
        med = lambda xs: statistics.median(xs) if xs else math.nan
        lines.append(
            f"| {f} | {_fmt(med([r.grad_evals for r in good]), '.0f')} | {_fmt(med([r.wall for r in good]), '.2f')} "
            f"| {sum(r.goal == 'ok' for r in rs)} | {sum(r.goal == 'flagged' for r in rs)} "
            f"| {sum(r.goal == 'SILENT FAILURE' for r in rs)} | {sum(r.goal == 'failed' for r in rs)} |"
        )
    for key in ("logreg", "eight_schools_cli"):
        if key in extra:
            lines += ["", f"## {key}", "", "```", json.dumps(extra[key], indent=1), "```"]
    return "\n".join(lines) + "\n"


def summarize(rows: list[Row], extra: dict) -> dict:
    by = lambda fit: {r.posterior: r for r in rows if r.fit == fit and not r.error}
    default = by(DEFAULT_FIT)
    peers = {p: [r for r in rows if r.posterior == p and r.fit in PEER_FITS and not r.error] for p in default}
    lines = []
    if default:
        ge = statistics.median(r.grad_evals for r in default.values())
        lines.append(f"default fit (`varinf.fit(model)` = {DEFAULT_FIT}): median {ge:.0f} gradient evaluations per "
                     f"posterior (goal ≤ 300: {'met' if ge <= 300 else 'MISSED'})")  # fmt: skip
        ratios = [r.wall / min(x.wall for x in peers[p]) for p, r in default.items() if peers[p]]
        if ratios:
            med = statistics.median(ratios)
            lines.append(f"median wall time / fastest peer's total, per posterior: {med:.2f} (goal ≤ 0.5: "
                         f"{'met' if med <= 0.5 else 'MISSED'}; range {min(ratios):.2f}–{max(ratios):.2f})")  # fmt: skip
        good = [r for r in default.values() if r.khat < 0.5]
        bad = [r for r in good if r.max_err > 0.05 or r.sd_min < 0.9 or r.sd_max > 1.1]
        missed = ", ".join(f"{r.posterior} (err {r.max_err:.3f}, sd {r.sd_min:.2f}–{r.sd_max:.2f})" for r in bad)
        lines.append(
            f"accuracy where k̂ < 0.5 ({len(good)} of {len(default)} posteriors): means within 0.05 sd and sd ratios in "
            f"[0.9, 1.1] on {len(good) - len(bad)}" + (f"; missed on {missed}" if bad else " (goal met)")
        )
    silent = [r for r in rows if r.goal == "SILENT FAILURE" and r.fit in VARINF_FITS]
    lines.append("silent failures (err > 0.1, no warning), every varinf fit: "
                 + (", ".join(f"{r.posterior} {r.fit} ({r.max_err:.3f})" for r in silent) or "none"))  # fmt: skip
    if "eight_schools_cli" in extra:
        e = extra["eight_schools_cli"]
        cpu = f", CPU {e['cpu_median']:.2f} s" if "cpu_median" in e else ""
        lines.append(f"`varinf fit eight_schools` whole process: median wall {e['wall_median']:.2f} s{cpu} (goal ≤ 3 s), max "
                     f"error {e['max_err']:.3f} sd (goal ≤ 0.1), warning printed: {e['warning_printed']}")  # fmt: skip
    for lr in extra.get("logreg", []):
        r = lr["ratio_to_numpyro"]
        lines.append(f"logistic regression {lr['n']}x{lr['d']}: ADVI step {lr['ms_per_step']['varinf fused (after)']:.3f} ms "
                     f"= {r['varinf fused (after)']:.2f}x NumPyro's warm step (before: {r['varinf generic (before)']:.2f}x); "
                     f"ATen calls per step {lr['aten_ops_per_step']['before']['all']:.0f} -> {lr['aten_ops_per_step']['after']['all']:.0f} "
                     f"(top-level {lr['aten_ops_per_step']['before']['top_level']:.0f} -> {lr['aten_ops_per_step']['after']['top_level']:.0f})")  # fmt: skip
    return {"lines": lines}


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def save(out: Path, rows, extra, meta) -> None:
    extra["summary"] = summarize(rows, extra)
    payload = {"meta": meta, "extra": extra, "rows": [asdict(r) | {"goal": r.goal} for r in rows]}
    _atomic_write(out / "posterior_speed.json", json.dumps(payload, indent=1, allow_nan=True))
    _atomic_write(out / "posterior_speed.md", markdown(rows, extra, meta))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posteriors", nargs="*", default=list(REFERENCE_POSTERIORS))
    ap.add_argument("--fits", nargs="*", default=[*VARINF_FITS, *PEER_FITS])
    ap.add_argument("--skip-logreg", action="store_true")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--resume", action="store_true", help="keep finished rows of an earlier run")
    ap.add_argument("--redo", action="store_true", help="with --resume: recompute the --fits x --posteriors rows")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--note", default=None, help="a paragraph shown under the header (e.g. what a partial run lacks)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "posterior_speed.json"
    rows, extra, old_meta = [], {}, {}
    if (args.resume or args.report_only) and path.is_file():
        old = json.loads(path.read_text())
        old_meta = old["meta"]
        rows = [Row(**{k: v for k, v in r.items() if k != "goal"}) for r in old["rows"]]
        extra = old.get("extra", {})
        if args.note is not None:
            extra["note"] = args.note
        if args.report_only:
            save(args.out, rows, extra, old["meta"])
            return 0
    if args.note is not None:
        extra["note"] = args.note
    import blackjax
    import jax
    import numpyro

    meta = {
        "command": "OMP_NUM_THREADS=1 nice -n 5 taskset -c 0 python benchmarks/posterior_speed.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__, "jax": jax.__version__, "numpyro": numpyro.__version__,
        "blackjax": blackjax.__version__, "commit": git_commit(),
    }  # fmt: skip
    meta = old_meta | {"reruns": [*old_meta.get("reruns", []), {k: meta[k] for k in ("command", "commit")}]} if (
        args.resume and path.is_file() and rows and old_meta) else meta  # fmt: skip
    warm_up_jax()
    done = {(r.posterior, r.fit) for r in rows if not r.error and not args.redo}
    order = [f for f in args.fits if f != "auto/flow"] + [f for f in args.fits if f == "auto/flow"]  # slow flows last
    for fit in order:
        for name in args.posteriors:
            if (name, fit) in done:
                continue
            if fit in VARINF_FITS:
                row = run_varinf(name, fit)
            elif fit == "blackjax/pathfinder":
                row = run_blackjax(name)
            else:
                row = run_numpyro(name, fit.split("/")[1])
            rows = [r for r in rows if (r.posterior, r.fit) != (name, fit)] + [row]
            rows.sort(key=lambda r: (r.posterior, [*VARINF_FITS, *PEER_FITS].index(r.fit)))
            print(f"{name:42s} {fit:32s} grad {row.grad_evals:6d} {row.wall:7.2f}s err {row.max_err:.3f} "
                  f"k {row.khat:.2f} {row.warned} {row.goal} {row.error}", flush=True)  # fmt: skip
            save(args.out, rows, extra, meta)
    if not args.skip_cli:
        extra["eight_schools_cli"] = eight_schools_cli()
        save(args.out, rows, extra, meta)
    if not args.skip_logreg:
        extra["logreg"] = [logreg(10_000, 20), logreg(100_000, 100, steps=200)]
        save(args.out, rows, extra, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
