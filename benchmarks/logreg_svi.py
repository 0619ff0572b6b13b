"""Bayesian logistic regression, 10,000 rows x 20 features (synthetic, fixed seed), mean-field ADVI,
5000 Adam steps at lr 0.01, 1 particle, float32: varinf vs NumPyro SVI AutoNormal (cold and warm) vs
Pyro SVI AutoNormal, in one process, plus posterior-mean error against a long NUTS reference.

All three in float32 (JAX with x64 off, torch tensors float32; the dtypes are recorded); the NUTS reference in
float64, in the same process before the timed runs. XLA single-threaded.

Run:  OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/logreg_svi.py   (writes benchmarks/results/logreg_svi.{json,md})
      python benchmarks/logreg_svi.py --quick    (fewer steps, smoke test)    --report (markdown from the JSON)

Never imported by the package.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import _results

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

RESULTS = _results.RESULTS
N, D, SEED, LR = 10_000, 20, 0, 0.01


def make_data():
    rng = np.random.default_rng(SEED)
    X = rng.standard_normal((N, D)).astype(np.float32)
    beta = (0.5 * rng.standard_normal(D)).astype(np.float32)
    logits = X @ beta + 0.3
    y = (rng.random(N) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    return X, y


# ----------------------------------------------------------------------------- reference (NUTS)
def nuts_reference(X, y, num_samples, num_warmup, chains):
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    def model(X, y):
        beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([D]).to_event(1))
        alpha = numpyro.sample("alpha", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Bernoulli(logits=X @ beta + alpha), obs=y)

    mcmc = MCMC(
        NUTS(model),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=chains,
        chain_method="sequential",
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(1), jnp.asarray(X, dtype=jnp.float64), jnp.asarray(y, dtype=jnp.float64))
    s = mcmc.get_samples()
    draws = np.concatenate([np.asarray(s["beta"]), np.asarray(s["alpha"])[:, None]], axis=1)
    return draws.mean(0), draws.std(0)


def error_in_sds(mean, ref_mean, ref_sd):
    e = np.abs(np.asarray(mean, dtype=np.float64) - ref_mean) / ref_sd
    return float(e.max()), float(e.mean())


# ----------------------------------------------------------------------------- varinf
def run_varinf(X, y, steps, average, init="zeros"):
    import torch

    from varinf import ELBO
    from varinf.models import LogisticRegression
    from varinf.optim import optimize as fit  # the SVI engine alone: the same work NumPyro's SVI does (no PSIS)

    model = LogisticRegression(torch.from_numpy(X), torch.from_numpy(y))
    with _results.Stopwatch() as sw:
        res = fit(
            model,
            "meanfield",
            ELBO(num_particles=1),
            max_steps=steps,
            lr=LR,
            tol_rel_obj=None,
            average=average,
            init=init,
            seed=0,
            progress=False,
            check=True,
        )
    loc = res.posterior().mean.detach().numpy()  # unconstrained = constrained here (all real)
    return sw, loc, res


# ----------------------------------------------------------------------------- numpyro
def run_numpyro(X, y, steps):
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal

    def model(X, y):
        beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([D]).to_event(1))
        alpha = numpyro.sample("alpha", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Bernoulli(logits=X @ beta + alpha), obs=y)

    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    guide = AutoNormal(model)
    svi = SVI(model, guide, numpyro.optim.Adam(LR), Trace_ELBO())

    # svi.run builds a fresh closure each call (so JAX recompiles every time); to measure a warm run we
    # jit one scan over svi.update and call it twice: the first call compiles (cold), the second does not.
    @jax.jit
    def run(state):
        return jax.lax.scan(lambda s, _: svi.update(s, Xj, yj), state, None, length=steps)

    out = {}
    for label in ("cold", "warm"):
        with _results.Stopwatch() as out[label]:
            state0 = svi.init(jax.random.PRNGKey(0), Xj, yj)
            state, _ = run(state0)
            jax.block_until_ready(state)
    med = guide.median(svi.get_params(state))
    mean = np.concatenate([np.asarray(med["beta"]), np.asarray(med["alpha"])[None]])
    return out["cold"], out["warm"], mean


# ----------------------------------------------------------------------------- pyro
def run_pyro(X, y, steps):
    import pyro
    import pyro.distributions as dist
    import torch
    from pyro.infer import SVI, Trace_ELBO
    from pyro.infer.autoguide import AutoNormal

    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def model(X, y):
        beta = pyro.sample("beta", dist.Normal(0.0, 1.0).expand([D]).to_event(1))
        alpha = pyro.sample("alpha", dist.Normal(0.0, 1.0))
        with pyro.plate("data", X.shape[0]):
            pyro.sample("y", dist.Bernoulli(logits=X @ beta + alpha), obs=y)

    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    guide = AutoNormal(model)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": LR}), Trace_ELBO())
    with _results.Stopwatch() as sw:
        for _ in range(steps):
            svi.step(Xt, yt)
    med = guide.median(Xt, yt)
    mean = np.concatenate([med["beta"].detach().numpy(), med["alpha"].detach().numpy()[None]])
    return sw, mean


def _t(r: dict, key: str) -> str:
    """'wall (CPU)' seconds of a row's timing, or '–'."""
    return "–" if r.get(key) is None else f"{r[key]:.2f} ({r[key.replace('_s', '_cpu_s')]:.2f})"


def markdown(payload: dict) -> str:
    steps = payload["steps"]
    lines = [
        f"# {payload['problem']}",
        "",
        *_results.provenance_lines(payload["meta"]),
        "",
        f"Precision: {', '.join(f'{k} {v}' for k, v in payload['dtypes'].items())}. Error = |posterior mean − NUTS "
        f"mean| / NUTS sd over the {payload['dim']} coefficients (NUTS reference: {payload['nuts']}, "
        f"{payload['nuts_reference_seconds']:.1f} s). *cold* = first call in the process (NumPyro: tracing and "
        "compilation included); *warm* = the same call again. Seconds as wall (CPU of the process); on a shared "
        "machine the CPU seconds are the comparable figure (see the load average above).",
        "",
        "| method | cold s | warm s | ms/step (warm, CPU) | max err (post. sd) | mean err (post. sd) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in payload["rows"].items():
        ms = f"{1e3 * r['warm_cpu_s'] / steps:.3f}" if r["warm_s"] is not None else "–"
        lines.append(
            f"| {name} | {_t(r, 'cold_s')} | {_t(r, 'warm_s')} | {ms} | {r['err'][0]:.3f} | {r['err'][1]:.3f} |"
        )
    ratios = payload["ratios"]
    lines += [
        "",
        f"varinf / NumPyro cold = {ratios['varinf_vs_numpyro_cold']:.2f} CPU ({ratios['wall']['varinf_vs_numpyro_cold']:.2f} "
        f"wall; target ≤ 0.5); varinf warm / NumPyro warm = {ratios['varinf_warm_vs_numpyro_warm']:.2f} CPU "
        f"({ratios['wall']['varinf_warm_vs_numpyro_warm']:.2f} wall; target ≤ 1.0)",
    ]
    return "\n".join(lines) + "\n"


def _timing(cold, warm) -> dict:
    return {"cold_s": cold and cold.wall, "cold_cpu_s": cold and cold.cpu, "warm_s": warm and warm.wall,
            "warm_cpu_s": warm and warm.cpu}  # fmt: skip


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-pyro", action="store_true")
    ap.add_argument("--out", default=str(RESULTS / "logreg_svi"))
    ap.add_argument("--report", action="store_true", help="rewrite the markdown from the JSON; run nothing")
    args = ap.parse_args()
    if args.report:
        print(_results.report(args.out, markdown))
        return
    steps = 500 if args.quick else args.steps
    import jax
    import torch

    meta = _results.provenance(__file__, steps=steps, quick=args.quick)
    X, y = make_data()

    t = time.perf_counter()
    jax.config.update("jax_enable_x64", True)
    nuts = (500, 300, 1) if args.quick else (2000, 1000, 4)
    ref_mean, ref_sd = nuts_reference(X, y, *nuts)
    jax.config.update("jax_enable_x64", False)
    t_ref = time.perf_counter() - t

    rows = {}
    # varinf: cold (first fit in the process) and warm (second); with and without iterate averaging.
    # Same start as NumPyro's SVI as far as possible: zeros (NumPyro: uniform(-2, 2)), scale 0.1 (both).
    v_cold, loc, res = run_varinf(X, y, steps, 0.25)
    v_warm, loc, _ = run_varinf(X, y, steps, 0.25)
    rows["varinf (averaged)"] = dict(**_timing(v_cold, v_warm), err=error_in_sds(loc, ref_mean, ref_sd))
    _, loc_last, _ = run_varinf(X, y, steps, 0.0)
    rows["varinf (last iterate)"] = dict(**_timing(None, None), err=error_in_sds(loc_last, ref_mean, ref_sd))
    # varinf's default start: the Laplace approximation (L-BFGS mode + Hessian), then the same 5000 steps
    v_lap, loc_lap, _ = run_varinf(X, y, steps, 0.25, init="auto")
    rows["varinf (Laplace init, averaged)"] = dict(**_timing(None, v_lap), err=error_in_sds(loc_lap, ref_mean, ref_sd))

    n_cold, n_warm, n_mean = run_numpyro(X, y, steps)
    rows["NumPyro AutoNormal"] = dict(**_timing(n_cold, n_warm), err=error_in_sds(n_mean, ref_mean, ref_sd))
    dtypes = {"varinf": str(res.posterior().mean.dtype).removeprefix("torch."), "NumPyro": str(n_mean.dtype)}
    if not args.no_pyro:
        p_run, p_mean = run_pyro(X, y, steps)
        rows["Pyro AutoNormal"] = dict(**_timing(p_run, p_run), err=error_in_sds(p_mean, ref_mean, ref_sd))
        dtypes["Pyro"] = str(p_mean.dtype)

    payload = dict(
        meta=_results.finish(meta),
        problem=f"logistic regression N={N} D={D} (+intercept), mean-field, {steps} Adam steps lr={LR}, 1 particle, float32",
        steps=steps,
        dim=D + 1,
        dtypes=dtypes,
        nuts=f"NumPyro NUTS, {nuts[2]} chain(s) x {nuts[0]} draws after {nuts[1]} warm-up, float64",
        nuts_reference_seconds=t_ref,
        torch_threads=torch.get_num_threads(),
        rows=rows,
        ratios=dict(  # CPU seconds; wall beside
            varinf_vs_numpyro_cold=v_cold.cpu / n_cold.cpu,
            varinf_warm_vs_numpyro_warm=v_warm.cpu / n_warm.cpu,
            wall=dict(
                varinf_vs_numpyro_cold=v_cold.wall / n_cold.wall, varinf_warm_vs_numpyro_warm=v_warm.wall / n_warm.wall
            ),
        ),
        targets=dict(vs_numpyro_cold="<= 0.5", vs_numpyro_warm="<= 1.0"),
    )
    print(_results.save(args.out, payload, markdown))


if __name__ == "__main__":
    main()
