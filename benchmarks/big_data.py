"""Big data: Bayesian logistic regression with 1M x 20 and 10M x 10 generated rows (float32).

varinf minibatch SVI (control variate, decaying step, averaging) vs varinf full-batch ADVI vs NumPyro SVI
with ``plate(subsample_size=B)``, at the same batch size, one thread each (``taskset -c 0``,
``OMP_NUM_THREADS=1``, XLA single-threaded), each method in its own process (peak RSS = that process's).
Reference: the posterior mode and Laplace covariance by Newton's method in float64 on all rows.

Reported per method: wall time to means within 0.1 reference sd (varinf: its whole fit, which decides by
itself when it is done; NumPyro: from the start, compilation included, until its iterates stay within
0.1 sd for the rest of the run), the final error and sd ratio, k-hat, fit + diagnostics + summary time,
peak RSS. Then data-parallel throughput: ``torchrun`` with 2 processes (gloo) against 1 on a
compute-bound full-batch fit, and the posterior of a 2-process minibatch fit against the 1-process one.

Run:  python benchmarks/big_data.py                   (~30 min; writes benchmarks/results/big_data.{json,md})
      python benchmarks/big_data.py --sizes 1m --quick  (smoke test)

Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = {"1m": (1_000_000, 20), "10m": (10_000_000, 10)}
BATCH = 1000
SEED = 0
NUMPYRO_LRS = (1e-2, 1e-3, 3e-4, 1e-4)


# ----------------------------------------------------------------------------- data and reference
def make_data(n: int, d: int, seed: int = SEED, chunk: int = 1 << 20):
    """X ~ N(0, I), beta ~ N(0, 0.5^2), alpha = 0.3, y ~ Bernoulli(sigmoid(X beta + alpha)); generated in
    chunks (fixed generators) so that 10M rows never need a second copy."""
    import torch

    g = torch.Generator().manual_seed(seed)
    beta = torch.randn(d, generator=g) * 0.5
    X, y = torch.empty(n, d), torch.empty(n)
    for k, i in enumerate(range(0, n, chunk)):
        gi = torch.Generator().manual_seed(seed * 1_000_003 + k + 1)
        Xi = torch.randn(min(chunk, n - i), d, generator=gi)
        X[i : i + len(Xi)] = Xi
        y[i : i + len(Xi)] = (torch.rand(len(Xi), generator=gi) < torch.sigmoid(Xi @ beta + 0.3)).float()
    return X, y


def newton_reference(X, y, chunk: int = 1 << 20):
    """Mode and Laplace covariance of the posterior over (beta, alpha), float64, N(0, 1) priors."""
    import torch

    n, d = X.shape
    D = d + 1
    u = torch.zeros(D, dtype=torch.float64)
    for _ in range(30):
        g, H = -u.clone(), torch.eye(D, dtype=torch.float64)
        for i in range(0, n, chunk):
            Xi = torch.cat([X[i : i + chunk].double(), torch.ones(min(chunk, n - i), 1, dtype=torch.float64)], 1)
            p = torch.sigmoid(Xi @ u)
            g += Xi.T @ (y[i : i + chunk].double() - p)
            H += (Xi * (p * (1 - p))[:, None]).T @ Xi
        step = torch.linalg.solve(H, g)
        u = u + step
        if step.abs().max() < 1e-12:
            break
    cov = torch.linalg.inv(H)
    return {"mean": u.tolist(), "sd": cov.diagonal().sqrt().tolist(), "mf_sd": H.diagonal().rsqrt().tolist()}


def errors(mean, sd, ref, family: str) -> dict:
    """Largest |mean - ref| in reference sds; sd ratio range against Laplace (and against the mean-field
    optimum 1/sqrt(H_ii) for a mean-field family, whose own bias is not the fit's fault)."""
    import numpy as np

    m, s = np.asarray(mean, dtype=np.float64), np.asarray(sd, dtype=np.float64)
    rm, rs = np.asarray(ref["mean"]), np.asarray(ref["sd"])
    out = {"mean_err": float(np.max(np.abs(m - rm) / rs)), "sd_ratio": [float((s / rs).min()), float((s / rs).max())]}
    if family == "meanfield":
        mf = np.asarray(ref["mf_sd"])
        out["sd_ratio_vs_mf_optimum"] = [float((s / mf).min()), float((s / mf).max())]
    return out


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: kB


# ----------------------------------------------------------------------------- workers (one process each)
def worker_reference(n, d, args):
    X, y = make_data(n, d)
    t = time.perf_counter()
    ref = newton_reference(X, y)
    ref["seconds"] = time.perf_counter() - t
    return ref


def _capture_family():
    """The benchmark watches q during the fit: wrap the ADVI module's build_family to keep a handle on q."""
    import varinf.optim.methods.advi as advi_module
    held = []
    original = advi_module.build_family

    def build(*a, **k):
        fam = original(*a, **k)
        held.append(fam)
        return fam

    advi_module.build_family = build
    return held


def worker_varinf(n, d, args):
    import torch

    import varinf
    from varinf.models import LogisticRegression

    torch.set_num_threads(1)
    ref = json.loads(Path(args.reference).read_text())
    X, y = make_data(n, d)
    model = LogisticRegression(X, y)
    del X, y
    held = _capture_family()
    trace, t0 = [], [0.0]

    def watch(step, bound):
        q = held[-1]()
        e = errors(q.mean.detach(), q.stddev.detach(), ref, args.family)
        trace.append((time.perf_counter() - t0[0], time.process_time() - c0, step, e["mean_err"]))

    batch = None if args.method == "varinf_full" else args.batch
    extra = {"max_steps": args.max_steps} if args.max_steps else {}
    t0[0] = time.perf_counter()
    c0 = time.process_time()
    res = varinf.fit(model, args.family, batch_size=batch, callback=watch, progress=False, diagnose=False, **extra)
    fit_cpu = time.process_time() - c0
    res = varinf.optim.build_result(res, varinf.diagnostics.diagnose(res))
    t_fit_diag = time.perf_counter() - t0[0]
    summary = res.summary()
    total = time.perf_counter() - t0[0]
    cpu = time.process_time() - c0
    q = res.posterior()
    out = errors(q.mean, q.stddev, ref, args.family)
    reached = [(t, c) for t, c, _, e in trace if e <= 0.1]
    return {
        **out,
        "fit_s": res.wall_time,
        "fit_cpu_s": fit_cpu,
        "fit_diagnostics_s": t_fit_diag,
        "fit_diagnostics_summary_s": total,
        "cpu_s": cpu,
        "first_within_0.1_s": reached[0][0] if reached else None,
        "first_within_0.1_cpu_s": reached[0][1] if reached else None,
        "steps": res.num_steps,
        "epochs": res.num_steps * batch / n if batch else res.num_steps,
        "converged": res.converged,
        "reason": res.convergence_reason,
        "khat": res.diagnostics.khat,
        "q_mean": q.mean.tolist(),
        "q_sd": q.stddev.tolist(),
        "estimate_note": summary.footer[-1] if summary.footer else "",
        "peak_rss_gb": peak_rss_gb(),
    }


def worker_numpyro(n, d, args):
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    import jax
    import jax.numpy as jnp
    import numpy as np
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoMultivariateNormal, AutoNormal

    ref = json.loads(Path(args.reference).read_text())
    X, y = make_data(n, d)
    Xj, yj = jnp.asarray(X.numpy()), jnp.asarray(y.numpy())
    del X, y

    def model(X, y):
        beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([d]).to_event(1))
        alpha = numpyro.sample("alpha", dist.Normal(0.0, 1.0))
        with numpyro.plate("data", X.shape[0], subsample_size=args.batch) as idx:
            numpyro.sample("y", dist.Bernoulli(logits=X[idx] @ beta + alpha), obs=y[idx])

    def moments(guide, params):
        if isinstance(guide, AutoNormal):
            loc, scale = params["beta_auto_loc"], params["beta_auto_scale"]
            mean = np.concatenate([np.asarray(loc), np.asarray(params["alpha_auto_loc"])[None]])
            sd = np.concatenate([np.asarray(scale), np.asarray(params["alpha_auto_scale"])[None]])
            return mean, sd
        L = np.asarray(params["auto_scale_tril"])
        return np.asarray(params["auto_loc"]), np.sqrt((L**2).sum(1))  # unconstrained = (beta, alpha)

    runs = []
    chunk = args.numpyro_chunk
    for lr in NUMPYRO_LRS:
        guide = (AutoNormal if args.family == "meanfield" else AutoMultivariateNormal)(model)
        svi = SVI(model, guide, numpyro.optim.Adam(lr), Trace_ELBO())
        run = jax.jit(lambda s, svi=svi: jax.lax.scan(lambda st, _: svi.update(st, Xj, yj), s, None, length=chunk))
        t0, c0 = time.perf_counter(), time.process_time()
        state = svi.init(jax.random.PRNGKey(0), Xj, yj)
        trace, steps = [], 0
        while steps < args.numpyro_steps and time.process_time() - c0 < args.numpyro_budget_s:
            state, _ = run(state)
            jax.block_until_ready(state)
            steps += chunk
            mean, sd = moments(guide, svi.get_params(state))
            trace.append(
                (time.perf_counter() - t0, time.process_time() - c0, steps, errors(mean, sd, ref, args.family))
            )
        errs = [e["mean_err"] for *_, e in trace]
        # time after which the iterates stay within 0.1 sd until the end of the run
        stay = next((i for i in range(len(errs)) if max(errs[i:]) <= 0.1), None)
        runs.append({
            "lr": lr,
            "steps": steps,
            "seconds": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0,
            "stays_within_0.1_from_s": trace[stay][0] if stay is not None else None,
            "stays_within_0.1_from_cpu_s": trace[stay][1] if stay is not None else None,
            "ms_per_step_cpu": 1e3 * (trace[-1][1] - trace[0][1]) / max(steps - chunk, 1),
            **trace[-1][3],
            "best_mean_err": min(errs),
        })  # fmt: skip
    return {"runs": runs, "peak_rss_gb": peak_rss_gb()}


def worker_throughput(n, d, args):
    """Under torchrun: each process holds its block of rows; full-batch steps (compute-bound), then a
    minibatch fit whose q is compared across world sizes."""
    import torch

    import varinf
    from varinf.distributed import init_distributed, shard_rows
    from varinf.models import LogisticRegression

    torch.set_num_threads(1)
    world = init_distributed()
    X, y = make_data(n, d)
    part = {k: v.clone() for k, v in shard_rows({"X": X, "y": y}, world).items()}
    del X, y
    model = LogisticRegression(**part, distributed=True)
    marks = []
    steps = args.throughput_steps
    varinf.fit(model, "meanfield", init="zeros", lr=0.01, tol_rel_obj=None, max_steps=steps, window=10,
               diagnose=False, progress=False, callback=lambda s, b: marks.append((time.perf_counter(), s)))  # fmt: skip
    (t1, s1), (t2, s2) = marks[0], marks[-1]
    rows_per_s = (s2 - s1) * n / (t2 - t1)
    t0 = time.perf_counter()
    res = varinf.fit(model, args.family, batch_size=args.batch, progress=False)
    mini_s = time.perf_counter() - t0
    q = res.posterior()
    return {
        "world": world.size,
        "full_batch_rows_per_s": rows_per_s,
        "full_batch_step_ms": 1e3 * (t2 - t1) / (s2 - s1),
        "minibatch_fit_s": mini_s,
        "minibatch_steps": res.num_steps,
        "minibatch_mean": q.mean.tolist(),
        "minibatch_sd": q.stddev.tolist(),
        "peak_rss_gb": peak_rss_gb(),
        "rank": torch.distributed.get_rank() if world.size > 1 else 0,
    }


WORKERS = {"reference": worker_reference, "varinf_minibatch": worker_varinf, "varinf_full": worker_varinf,
           "numpyro": worker_numpyro, "throughput": worker_throughput}  # fmt: skip


# ----------------------------------------------------------------------------- driver
def _spawn(method: str, size: str, args, out: Path, extra=(), world: int | None = None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}  # fmt: skip
    script = [str(Path(__file__).resolve()), "--worker", method, "--sizes", size, "--result", str(out),
              "--family", args.family, "--batch", str(args.batch), "--reference", str(args.reference_path(size)),
              "--numpyro-steps", str(args.numpyro_steps), "--numpyro-budget-s", str(args.numpyro_budget_s),
              "--numpyro-chunk", str(args.numpyro_chunk), "--throughput-steps", str(args.throughput_steps), *extra]  # fmt: skip
    if world is None:
        cmd = ["taskset", "-c", "0", sys.executable, *script]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={world}", *script]
    load = os.getloadavg()[0]
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{method} {size} failed:\n{done.stderr[-4000:]}")
    result = json.loads(out.read_text())
    result["process_wall_s"] = time.perf_counter() - t
    result["load_before"] = load
    print(f"  {method} {size}: {json.dumps(result)[:300]}", flush=True)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1m,10m")
    ap.add_argument("--family", default="fullrank")
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(RESULTS / "big_data"))
    ap.add_argument("--numpyro-steps", type=int, default=300_000)
    ap.add_argument("--numpyro-budget-s", type=float, default=120.0, help="CPU seconds per learning rate")
    ap.add_argument("--numpyro-chunk", type=int, default=500)
    ap.add_argument("--throughput-steps", type=int, default=60)
    ap.add_argument("--full-max-steps", default="1m:4000,10m:600", help="full-batch step caps per size")
    ap.add_argument("--skip", default="", help="comma-separated methods to leave out")
    ap.add_argument("--render", default=None, help="rewrite the markdown from this JSON (no runs)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--method", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--max-steps", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--reference", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        n, d = SIZES[args.sizes]
        args.method = args.worker
        result = WORKERS[args.worker](n, d, args)
        if "RANK" not in os.environ or os.environ["RANK"] == "0":
            Path(args.result).write_text(json.dumps(result))
        else:  # other ranks write beside rank 0's file
            Path(f"{args.result}.rank{os.environ['RANK']}").write_text(json.dumps(result))
        return
    if args.render:
        report = json.loads(Path(args.render).read_text())
        Path(args.render).with_suffix(".md").write_text(markdown(report))
        return
    if args.quick:
        args.numpyro_budget_s, args.numpyro_steps, args.throughput_steps = 10.0, 20_000, 20
        args.full_max_steps = "1m:200,10m:50"
    tmp = Path(tempfile.mkdtemp(prefix="big_data_"))
    args.reference_path = lambda size: tmp / f"reference_{size}.json"
    skip = set(filter(None, args.skip.split(",")))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from provenance import git_commit

    results = {}
    for size in args.sizes.split(","):
        n, d = SIZES[size]
        print(f"{size}: {n:,} rows x {d}", flush=True)
        r = results[size] = {"rows": n, "features": d}
        r["reference"] = _spawn("reference", size, args, args.reference_path(size))
        for method in ("varinf_minibatch", "numpyro", "varinf_full"):
            if method in skip:
                continue
            caps = dict(kv.split(":") for kv in args.full_max_steps.split(","))
            extra = ("--max-steps", caps.get(size, "4000")) if method == "varinf_full" else ()
            r[method] = _spawn(method, size, args, tmp / f"{method}_{size}.json", extra)
        if "throughput" not in skip and size == "1m":
            r["throughput"] = {w: _spawn("throughput", size, args, tmp / f"tp{w}_{size}.json", world=w) for w in (1, 2)}
    import torch

    report = {
        "problem": "Bayesian logistic regression, N(0,1) priors on (beta, alpha), generated data (float32)",
        "family": args.family,
        "batch_size": args.batch,
        "commit": git_commit(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(report, indent=2) + "\n")
    Path(args.out + ".md").write_text(markdown(report))
    print(markdown(report))


def _f(x, fmt="{:.2f}"):
    return "–" if x is None else fmt.format(x)


def markdown(report: dict) -> str:
    lines = [f"# Big data: {report['problem']}", "",
             f"Family **{report['family']}**, batch size {report['batch_size']}, one thread per process "
             f"(`taskset -c 0`), commit {report['commit']}. Errors: max over (beta, alpha) of |mean − Laplace "
             "mean| / Laplace sd (reference: Newton in float64 on all rows). Times are CPU seconds of the "
             "single-threaded process (robust on a shared machine) and wall seconds (\"load\" = 1-min load "
             "average when the process started; 2 cores).", "", *report.get("notes", []), ""]  # fmt: skip
    for r in report["results"].values():
        ref = r["reference"]
        lines += [f"## {r['rows']:,} rows × {r['features']} features", "",
                  f"Reference: Newton {ref['seconds']:.1f} s; Laplace sds {min(ref['sd']):.2e}–{max(ref['sd']):.2e}.", "",
                  "| method | to 0.1 sd: CPU s (wall s) | fit + diagnostics + summary: CPU s (wall s) | steps | epochs | mean err (sd) | sd ratio vs Laplace | k̂ | peak RSS (GB) | load |",
                  "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for key, label in (("varinf_minibatch", "varinf minibatch"), ("varinf_full", "varinf full batch")):
            v = r.get(key)
            if v is None:
                continue
            ok = v["mean_err"] <= 0.1
            to = f"{v['fit_cpu_s']:.1f} ({v['fit_s']:.1f})" if ok else "not reached"
            lines.append(
                f"| {label} | {to} | {v['cpu_s']:.1f} ({v['fit_diagnostics_summary_s']:.1f}) | {v['steps']} | "
                f"{v['epochs']:.2f} | {v['mean_err']:.3f} | {v['sd_ratio'][0]:.3f}–{v['sd_ratio'][1]:.3f} | "
                f"{v['khat']:.2f} | {v['peak_rss_gb']:.2f} | {v['load_before']:.1f} |"
            )
        npy = r.get("numpyro")
        if npy is not None:
            for run in npy["runs"]:
                c, w = run["stays_within_0.1_from_cpu_s"], run["stays_within_0.1_from_s"]
                to = f"{c:.1f} ({w:.1f})" if c is not None else f"not within {run['cpu_s']:.0f} CPU s"
                lines.append(
                    f"| NumPyro SVI subsample, lr {run['lr']:g} ({run['ms_per_step_cpu']:.3f} ms/step) | {to} | – | "
                    f"{run['steps']} | {run['steps'] * report['batch_size'] / r['rows']:.1f} | {run['mean_err']:.3f} "
                    f"(best {run['best_mean_err']:.3f}) | {run['sd_ratio'][0]:.3f}–{run['sd_ratio'][1]:.3f} | – | "
                    f"{npy['peak_rss_gb']:.2f} | {npy['load_before']:.1f} |"
                )
        lines.append("")
        v = r.get("varinf_minibatch")
        if v is not None:
            lines += [f"varinf minibatch: {v['reason']}; {v['estimate_note']}.", ""]
            if npy is not None and v["mean_err"] <= 0.1:
                times = [x["stays_within_0.1_from_cpu_s"] for x in npy["runs"] if x["stays_within_0.1_from_cpu_s"]]
                if times:
                    lines += [f"varinf minibatch fit / fastest NumPyro to 0.1 sd (CPU time): **{v['fit_cpu_s'] / min(times):.2f}** "
                              f"(with diagnostics + summary: {v['cpu_s'] / min(times):.2f}).", ""]  # fmt: skip
                else:
                    budget = max(x["cpu_s"] for x in npy["runs"])
                    lines += [f"NumPyro's iterates did not stay within 0.1 sd at any of its learning rates within "
                              f"{budget:.0f} CPU s each; varinf's fit took {v['fit_cpu_s']:.1f} CPU s.", ""]  # fmt: skip
        full = r.get("varinf_full")
        if v is not None and full is not None and "q_sd" in v and "q_sd" in full:
            import numpy as np

            ratio = np.array(v["q_sd"]) / np.array(full["q_sd"])
            shift = np.max(np.abs(np.array(v["q_mean"]) - full["q_mean"]) / np.array(full["q_sd"]))
            lines += [f"Minibatch vs full-batch VI (same family): sds {ratio.min():.3f}–{ratio.max():.3f} of full batch's, "
                      f"means {shift:.3f} full-batch sds apart.", ""]  # fmt: skip
        tp = r.get("throughput")
        if tp:
            one, two = tp["1"] if "1" in tp else tp[1], tp["2"] if "2" in tp else tp[2]
            import numpy as np

            shift = np.max(np.abs(np.array(two["minibatch_mean"]) - one["minibatch_mean"]) / np.array(ref["sd"]))
            lines += [
                "### Data-parallel (torchrun, gloo, 1 thread per process)", "",
                "| processes | full-batch rows/s | ms/step | minibatch fit (wall s) | peak RSS per process (GB) | load |",
                "|---|---|---|---|---|---|",
                *(f"| {w['world']} | {w['full_batch_rows_per_s']:.3g} | {w['full_batch_step_ms']:.1f} | {w['minibatch_fit_s']:.1f} | "
                  f"{w['peak_rss_gb']:.2f} | {w['load_before']:.1f} |" for w in (one, two)),
                "",
                f"2 / 1 process throughput (wall): **{two['full_batch_rows_per_s'] / one['full_batch_rows_per_s']:.2f}×**; "
                f"minibatch posterior means differ by {shift:.2g} reference sd.", "",
            ]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
