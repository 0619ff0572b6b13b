"""varinf vs NumPyro SVI on posteriordb posteriors: same family, same step budget, same optimizer settings.

Pairs: varinf ``MeanField`` vs NumPyro ``AutoNormal``; varinf ``FullRank`` vs ``AutoMultivariateNormal``.
Shared settings: unconstrained start at 0, initial scale 0.1, Adam(lr), one reparameterized ELBO particle,
exactly ``--steps`` steps (no convergence test), float64. varinf additionally averages the iterates of the
last 25% of the steps (its default; NumPyro has no equivalent). Accuracy is measured against the posteriordb
reference draws (error of means in reference sds, sd ratio) with 4000 draws of each q; PSIS k̂ is computed
for both with varinf's diagnostics (the NumPyro models below use the same latent names, order and
unconstraining transforms as the varinf models, so the NumPyro guide is a distribution over the same space).
Time: varinf ``FitResult.wall_time`` (engine only); NumPyro ``svi.run`` wall time including JIT compilation
(compilation alone is also reported: the same run with 1 step).

Run:  OMP_NUM_THREADS=1 nice -n 10 python benchmarks/numpyro_svi.py [--steps 5000] [--lr 0.01]
Writes benchmarks/results/numpyro_svi.{json,md}. Needs the ``bench`` extra (numpyro, jax). Never imported by
the package.
"""

from __future__ import annotations

import os

# one CPU thread for XLA too (set before jax is imported)
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse
import json
import platform
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import torch
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoMultivariateNormal, AutoNormal
from numpyro.infer.initialization import init_to_uniform
from torch.distributions import Independent, MultivariateNormal, Normal

import varinf
from varinf.diagnostics import diagnose_q
from varinf.objectives import ELBO
from varinf.posteriordb import compare_to_reference, load_posterior

numpyro.enable_x64()
RESULTS = Path(__file__).resolve().parent / "results"
FLAT_REAL = dist.ImproperUniform(dist.constraints.real, (), ())
FLAT_POS = dist.ImproperUniform(dist.constraints.positive, (), ())


# ---------------------------------------------------------------- NumPyro versions of the Stan programs
def eight_schools_noncentered(data):
    y, sigma = jnp.array(data["y"], float), jnp.array(data["sigma"], float)
    theta_trans = numpyro.sample("theta_trans", dist.Normal(0, 1).expand([data["J"]]).to_event(1))
    mu = numpyro.sample("mu", dist.Normal(0, 5))
    tau = numpyro.sample("tau", dist.HalfCauchy(5))
    theta = numpyro.deterministic("theta", mu + tau * theta_trans)
    numpyro.sample("y", dist.Normal(theta, sigma), obs=y)


def ark(data):
    y, K = jnp.array(data["y"], float), data["K"]
    alpha = numpyro.sample("alpha", dist.Normal(0, 10))
    beta = numpyro.sample("beta", dist.Normal(0, 10).expand([K]).to_event(1))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    lags = jnp.stack([y[K - k : len(y) - k] for k in range(1, K + 1)], axis=1)
    numpyro.sample("y", dist.Normal(alpha + lags @ beta, sigma), obs=y[K:])


def garch11(data):
    y = jnp.array(data["y"], float)
    mu = numpyro.sample("mu", FLAT_REAL)
    alpha0 = numpyro.sample("alpha0", FLAT_POS)
    alpha1 = numpyro.sample("alpha1", dist.Uniform(0, 1))
    beta1_unit = numpyro.sample("beta1_unit", dist.Uniform(0, 1))
    beta1 = numpyro.deterministic("beta1", (1 - alpha1) * beta1_unit)
    numpyro.factor("jacobian", jnp.log1p(-alpha1))  # flat density on (alpha1, beta1), as in varinf's model

    def step(var_prev, y_prev):
        var = alpha0 + alpha1 * (y_prev - mu) ** 2 + beta1 * var_prev
        return var, var

    _, var = jax.lax.scan(step, data["sigma1"] ** 2, y[:-1])
    var = jnp.concatenate([jnp.array([data["sigma1"] ** 2]), var])
    numpyro.sample("y", dist.Normal(mu, jnp.sqrt(var)), obs=y)


def gp_regr(data):
    x, y = jnp.array(data["x"], float), jnp.array(data["y"], float)
    rho = numpyro.sample("rho", dist.Gamma(25, 4))
    alpha = numpyro.sample("alpha", dist.HalfNormal(2))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1))
    K = alpha**2 * jnp.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * rho**2)) + sigma * jnp.eye(len(x))
    numpyro.sample("y", dist.MultivariateNormal(jnp.zeros(len(x)), covariance_matrix=K), obs=y)


def kidscore_interaction_z(data):
    hs, iq = np.array(data["mom_hs"], float), np.array(data["mom_iq"], float)
    zh, zi = (hs - hs.mean()) / (2 * hs.std(ddof=1)), (iq - iq.mean()) / (2 * iq.std(ddof=1))
    X = jnp.array(np.column_stack([np.ones_like(zh), zh, zi, zh * zi]))
    beta = numpyro.sample("beta", dist.ImproperUniform(dist.constraints.real, (), (4,)))
    sigma = numpyro.sample("sigma", FLAT_POS)
    numpyro.sample("y", dist.Normal(X @ beta, sigma), obs=jnp.array(data["kid_score"], float))


MODELS = {
    "eight_schools-eight_schools_noncentered": eight_schools_noncentered,
    "arK-arK": ark,
    "garch-garch11": garch11,
    "gp_pois_regr-gp_regr": gp_regr,
    "kidiq_with_mom_work-kidscore_interaction_z": kidscore_interaction_z,
}
PAIRS = (("meanfield", AutoNormal), ("fullrank", AutoMultivariateNormal))


@dataclass
class Side:
    max_err: float
    mean_err: float
    sd_ratio_min: float
    sd_ratio_max: float
    khat: float
    wall_time: float
    compile_time: float = 0.0


@dataclass
class Row:
    posterior: str
    family: str
    steps: int
    lr: float
    varinf: Side
    numpyro: Side


def _compare(model, post, z):
    with torch.no_grad():
        qty = model.reference_quantities(z)
    return compare_to_reference(qty, post.reference, model.reference_names)


def run_varinf(model, post, family, steps, lr):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k-hat is recorded in the table
        res = varinf.fit(
            model, family=family, objective=ELBO(), lr=lr, max_steps=steps, tol_rel_obj=None,
            dtype=torch.float64, seed=0, progress=False,
        )  # fmt: skip
    d = res.diagnostics
    c = _compare(model, post, d.draws)
    return Side(c.max_mean_error, c.mean_mean_error, c.min_sd_ratio, c.max_sd_ratio, d.khat, res.wall_time)


def _numpyro_q(guide_cls, params, model):
    """The NumPyro guide as a torch distribution over varinf's unconstrained space (same layout)."""
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)
    if guide_cls is AutoMultivariateNormal:
        return MultivariateNormal(t(params["auto_loc"]), scale_tril=t(params["auto_scale_tril"]))
    names = [lat.name for lat in model.latents]
    loc = torch.cat([t(params[f"{n}_auto_loc"]).reshape(-1) for n in names])
    scale = torch.cat([t(params[f"{n}_auto_scale"]).reshape(-1) for n in names])
    return Independent(Normal(loc, scale), 1)


def run_numpyro(np_model, guide_cls, model, post, steps, lr):
    guide = guide_cls(np_model, init_loc_fn=init_to_uniform(radius=0.0), init_scale=0.1)
    svi = SVI(np_model, guide, numpyro.optim.Adam(lr), Trace_ELBO())
    key = jax.random.PRNGKey(0)
    jax.block_until_ready(svi.run(key, 1, post.data, progress_bar=False).params)  # warm-up: JAX start-up
    t0 = time.perf_counter()
    jax.block_until_ready(svi.run(key, 1, post.data, progress_bar=False).params)
    compile_time = time.perf_counter() - t0  # every svi.run traces and compiles its loop again
    t0 = time.perf_counter()
    out = svi.run(key, steps, post.data, progress_bar=False)
    jax.block_until_ready(out.params)
    wall = time.perf_counter() - t0
    sites = sorted({n.split("[")[0] for n in model.reference_names} | {lat.name for lat in model.latents})
    draws = Predictive(np_model, guide=guide, params=out.params, num_samples=4000, return_sites=sites)(
        jax.random.PRNGKey(1), post.data
    )
    z = {k: torch.as_tensor(np.array(v), dtype=torch.float64) for k, v in draws.items()}
    c = _compare(model, post, {lat.name: z[lat.name] for lat in model.latents})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = diagnose_q(model, _numpyro_q(guide_cls, out.params, model), num_draws=4000, warn=False)
    return Side(c.max_mean_error, c.mean_mean_error, c.min_sd_ratio, c.max_sd_ratio, d.khat, wall, compile_time)


def markdown(rows, meta) -> str:
    lines = [
        "# varinf vs NumPyro SVI (same family, same step budget)",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; torch {meta['torch']}, jax {meta['jax']}, numpyro {meta['numpyro']}; one "
        "thread each, shared CPU (times are noisy). Adam, 1 reparameterized particle, fixed steps, start at 0 "
        "(unconstrained), initial scale 0.1, float64; varinf averages the last 25% of iterates.",
        "Errors in reference sds (max over reference quantities). NumPyro s = whole `svi.run` incl. JIT "
        "compilation (compile ≈ a 1-step `svi.run`); time ratio = varinf / (NumPyro − compile), i.e. per-step "
        "speed of the optimization loops.",
        "",
        "| posterior | family | steps | varinf max err | NumPyro max err | varinf sd ratio | NumPyro sd ratio "
        "| varinf k̂ | NumPyro k̂ | varinf s | NumPyro s (compile) | time ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        v, n = r.varinf, r.numpyro
        lines.append(
            f"| {r.posterior} | {r.family} | {r.steps} | {v.max_err:.3f} | {n.max_err:.3f} "
            f"| {v.sd_ratio_min:.2f}–{v.sd_ratio_max:.2f} | {n.sd_ratio_min:.2f}–{n.sd_ratio_max:.2f} "
            f"| {v.khat:.2f} | {n.khat:.2f} | {v.wall_time:.1f} | {n.wall_time:.1f} ({n.compile_time:.1f}) "
            f"| {v.wall_time / max(n.wall_time - n.compile_time, 1e-9):.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--posteriors", nargs="*", default=list(MODELS))
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    meta = {
        "command": "OMP_NUM_THREADS=1 nice -n 10 python benchmarks/numpyro_svi.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "jax": jax.__version__,
        "numpyro": numpyro.__version__,
    }
    rows = []
    for name in args.posteriors:
        post = load_posterior(name)
        model = post.model()
        for family, guide_cls in PAIRS:
            v = run_varinf(model, post, family, args.steps, args.lr)
            n = run_numpyro(MODELS[name], guide_cls, model, post, args.steps, args.lr)
            rows.append(Row(name, family, args.steps, args.lr, v, n))
            print(f"{name:45s} {family:9s} varinf err {v.max_err:.3f} k {v.khat:.2f} {v.wall_time:.1f}s | "
                  f"numpyro err {n.max_err:.3f} k {n.khat:.2f} {n.wall_time:.1f}s", flush=True)  # fmt: skip
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "numpyro_svi.json").write_text(
                json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=1)
            )
            (args.out / "numpyro_svi.md").write_text(markdown(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
