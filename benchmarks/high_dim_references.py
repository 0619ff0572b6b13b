"""High-dimensional reference posteriors: long Stan NUTS runs (pystan) on posteriordb programs without reference draws.

For each program (``../shared/data/posteriordb/<name>/model.stan`` + ``data.json``; D = unconstrained dimension
from ~400 to ~4,000): a pilot of 4 chains x (1,000 warmup + 1,000 draws) gives the smallest bulk/tail ESS per
draw; the final run is 4 fresh chains (new seed) long enough that every parameter reaches R-hat <= 1.01 and
bulk ESS >= 1,000 (draws = 1,000 x 1.3 / smallest bulk ESS per pilot draw, at least 1,000). Chains run one after
another in ONE worker process (httpstan's process pool is replaced by a one-worker pool), so the sampling CPU
seconds are Stan's own on one core. A program whose pilot predicts more than 1 CPU-hour in all, or whose final
run misses the criteria, is recorded as failed (and not used as a reference).

Saved per program (``benchmarks/results/high_dim_references/<name>.json.gz``; never raw draws): for every
scalar of the Stan ``parameters`` block (constrained, Stan's names, ``theta[3]``, ``L[2,1]`` row-major in the
brackets) the mean, sd, quantiles 5/25/50/75/95, MCSE of mean and sd, R-hat (rank-normalized split), bulk and
tail ESS (ArviZ); the unconstrained dimension; seeds, settings, sampling wall and CPU seconds, leapfrog steps,
divergences, tree depth hits, step sizes, compile seconds, for the pilot and the final run.

Run (long: hours; one core, niced, in the background; resumable: finished programs are skipped):
  OMP_NUM_THREADS=1 nice -n 19 taskset -c 1 python benchmarks/high_dim_references.py > runs/refs.log 2>&1 &
  ... --programs sat-hier_2pl lsat_data-lsat_model     (a subset)    --report-only   (rewrite the markdown)
Writes benchmarks/results/high_dim_references.md from the JSON files. Never imported by the package.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from provenance import git_commit

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data" / "posteriordb"
OUT = ROOT / "results" / "high_dim_references"
REPORT = ROOT / "results" / "high_dim_references.md"

# (name, kind, sampler settings beyond Stan's defaults)
PROGRAMS = [
    ("radon_all-radon_hierarchical_intercept_noncentered", "hierarchical regression (radon, varying intercept)", {}),
    ("Mth_data-Mth_model", "capture-recapture GLMM (logit-normal individual effects)", {}),
    ("lsat_data-lsat_model", "Rasch random-effects model", {}),
    ("fims_Aus_Jpn_irt-2pl_latent_reg_irt", "IRT 2PL with latent regression", {}),
    ("traffic_accident_nyc-bym2_offset_only", "BYM2 spatial Poisson", {}),
    ("sat-hier_2pl", "hierarchical IRT 2PL (correlated item parameters)", {}),
    ("radon_all-radon_variable_intercept_slope_noncentered", "hierarchical regression (radon, varying intercept and slope)", {}),
    ("ovarian-logistic_regression_rhs", "logistic regression, regularized horseshoe", {"delta": 0.95}),
]
PILOT = dict(num_warmup=1000, num_samples=1000)
TARGET_ESS = 1000.0
MAX_RHAT = 1.01
SAFETY = 1.3
CPU_BUDGET_S = 3600.0
SEED_PILOT, SEED_FINAL = 20250, 20251


def stanc_info(model_path: Path) -> dict:
    import httpstan

    stanc = Path(httpstan.__file__).parent / "stanc"
    out = subprocess.run([str(stanc), "--info", str(model_path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def one_worker_pool() -> concurrent.futures.ProcessPoolExecutor:
    """Replace httpstan's process pool (one worker per CPU) by one worker: chains run one after another."""
    import httpstan.services_stub as stub

    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=1, mp_context=mp.get_context("fork"), initializer=stub.init_worker
    )
    stub.executor = pool
    return pool


def flat_names(name: str, shape: tuple[int, ...]) -> list[str]:
    if not shape:
        return [name]
    return [f"{name}[{','.join(str(i + 1) for i in idx)}]" for idx in np.ndindex(*shape)]


def summarize(fit, params: list[str], num_chains: int) -> tuple[dict, dict]:
    """Per-scalar summary of the parameters block (constrained) and the sampler's statistics."""
    import arviz as az

    az.Numba.disable_numba()  # ArviZ 0.23's numba path of mcse(method="sd") fails on numpy 2.4
    cols, names = [], []
    dims = dict(zip(fit.param_names, fit.dims))
    for p in params:
        a = np.asarray(fit[p])  # (*shape, draws_total), chains concatenated
        shape = tuple(dims[p])
        a = a.reshape(-1, a.shape[-1])  # row-major over shape
        cols.append(a)
        names += flat_names(p, shape)
    x = np.concatenate(cols, 0)  # (K, chains * draws)
    k, total = x.shape
    # pystan's last axis runs draw-major, chain-minor: index = draw * num_chains + chain
    x = x.reshape(k, total // num_chains, num_chains).transpose(2, 1, 0)  # (chain, draw, K)
    ds = az.convert_to_dataset({"x": x})
    stat = lambda f, **kw: np.asarray(f(ds, **kw)["x"].values, dtype=float)
    flat = x.reshape(-1, k)
    q = np.quantile(flat, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    summary = {
        "names": names,
        "mean": flat.mean(0),
        "sd": flat.std(0, ddof=1),
        **{f"q{p}": q[i] for i, p in enumerate((5, 25, 50, 75, 95))},
        "mcse_mean": stat(az.mcse, method="mean"),
        "mcse_sd": stat(az.mcse, method="sd"),
        "r_hat": stat(az.rhat),
        "ess_bulk": stat(az.ess, method="bulk"),
        "ess_tail": stat(az.ess, method="tail"),
    }
    summary = {key: (v if key == "names" else [float(t) for t in v]) for key, v in summary.items()}
    leap = np.asarray(fit["n_leapfrog__"]).reshape(-1)
    sampler = {
        "leapfrog_steps_sampling": int(leap.sum()),
        "divergences": int(np.asarray(fit["divergent__"]).sum()),
        "max_treedepth_seen": int(np.asarray(fit["treedepth__"]).max()),
        "step_size_per_chain": [
            float(s) for s in np.asarray(fit["stepsize__"]).reshape(-1)[:num_chains]
        ],
        "mean_accept_stat": float(np.asarray(fit["accept_stat__"]).mean()),
    }
    return summary, sampler


def verdict(summary: dict) -> dict:
    """Criteria over scalars that vary (a constrained scalar fixed by the transform, e.g. L[1,1] = 1, is skipped)."""
    sd = np.asarray(summary["sd"])
    live = sd > 0
    rhat = np.asarray(summary["r_hat"])[live]
    bulk = np.asarray(summary["ess_bulk"])[live]
    tail = np.asarray(summary["ess_tail"])[live]
    return {
        "scalars": int(live.sum()),
        "fixed_scalars_skipped": int((~live).sum()),
        "max_r_hat": float(np.nanmax(rhat)),
        "min_ess_bulk": float(np.nanmin(bulk)),
        "min_ess_tail": float(np.nanmin(tail)),
        "ok": bool(np.nanmax(rhat) <= MAX_RHAT and np.nanmin(bulk) >= TARGET_ESS and np.all(np.isfinite(rhat))),
    }


def run_nuts(posterior, settings: dict, num_chains: int = 4) -> tuple[object, dict]:
    pool = one_worker_pool()
    cpu0, t0 = children_cpu(), time.perf_counter()
    fit = posterior.sample(num_chains=num_chains, **settings)
    wall = time.perf_counter() - t0
    pool.shutdown(wait=True)  # the worker is reaped: its CPU time is now in RUSAGE_CHILDREN
    return fit, {"wall_s": wall, "cpu_s": children_cpu() - cpu0}


def drop_cached_fits(model_name: str) -> None:
    """httpstan keeps every seeded fit's full output (all draws, compressed) in its cache: remove them."""
    import httpstan.cache

    fits = Path(httpstan.cache.model_directory(model_name)) / "fits"
    if fits.is_dir():
        shutil.rmtree(fits, ignore_errors=True)


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def reference(name: str, kind: str, extra: dict) -> dict:
    import stan

    folder = DATA / name
    code = (folder / "model.stan").read_text()
    data = json.loads((folder / "data.json").read_text())
    info = stanc_info(folder / "model.stan")
    params = list(info["parameters"])
    record = {
        "name": name, "kind": kind, "stan_parameters": params,
        "criteria": {"max_r_hat": MAX_RHAT, "min_ess_bulk": TARGET_ESS, "cpu_budget_s": CPU_BUDGET_S},
        "versions": {"pystan": stan.__version__ if hasattr(stan, "__version__") else "3", "python": platform.python_version()},
        "commit": git_commit(), "command": " ".join(sys.argv), "host": platform.node(),
        "load_at_start": os.getloadavg(),
    }
    t0 = time.perf_counter()
    posterior = stan.build(code, data=data, random_seed=SEED_PILOT)
    record["compile_s"] = time.perf_counter() - t0  # 0-2 s when httpstan has the model cached
    runs = {}
    pilot_settings = {**PILOT, **extra}
    fit, timing = run_nuts(posterior, pilot_settings)
    summary, sampler = summarize(fit, params, 4)
    dims = dict(zip(posterior.param_names, posterior.dims))
    first = {p: np.asarray(fit[p])[..., 0].reshape(dims[p]).tolist() for p in params}
    record["dim"] = len(posterior.unconstrain_pars(first))  # D, unconstrained
    del fit
    drop_cached_fits(posterior.model_name)
    v = verdict(summary)
    runs["pilot"] = {"seed": SEED_PILOT, "chains": 4, "settings": pilot_settings, **timing, **sampler, "verdict": v}
    print(f"[{name}] pilot: {timing['cpu_s']:.0f} s CPU, {v}", flush=True)
    used = timing["cpu_s"]
    ess_per_draw = min(v["min_ess_bulk"], TARGET_ESS) / (4 * PILOT["num_samples"])
    if v["ok"]:
        record.update(status="ok", final="pilot", summary=summary, runs=runs)
        return record
    record["pilot_summary"] = summary  # kept: a provisional reference while the final run goes
    atomic_write(OUT / f"{name}.pilot.json.gz", gzip.compress(json.dumps({**record, "runs": runs}).encode()))
    draws = max(PILOT["num_samples"], int(math.ceil(TARGET_ESS * SAFETY / max(ess_per_draw, 1e-6) / 4 / 100) * 100))
    per_iter = timing["cpu_s"] / (4 * (PILOT["num_warmup"] + PILOT["num_samples"]))
    predicted = per_iter * 4 * (PILOT["num_warmup"] + draws)
    record["final_draws_per_chain"] = draws
    record["predicted_final_cpu_s"] = predicted
    if used + predicted > CPU_BUDGET_S:
        record.update(status="failed", reason=(
            f"pilot: min bulk ESS {v['min_ess_bulk']:.0f} / 4000 draws, max R-hat {v['max_r_hat']:.3f}; "
            f"{draws} draws per chain predicted at {predicted:.0f} s CPU + {used:.0f} s used > {CPU_BUDGET_S:.0f} s"
        ), runs=runs)
        return record
    final_settings = {"num_warmup": PILOT["num_warmup"], "num_samples": draws, **extra}
    posterior = stan.build(code, data=data, random_seed=SEED_FINAL)
    fit, timing = run_nuts(posterior, final_settings)
    summary, sampler = summarize(fit, params, 4)
    del fit
    drop_cached_fits(posterior.model_name)
    v = verdict(summary)
    runs["final"] = {"seed": SEED_FINAL, "chains": 4, "settings": final_settings, **timing, **sampler, "verdict": v}
    print(f"[{name}] final: {timing['cpu_s']:.0f} s CPU, {v}", flush=True)
    total = used + timing["cpu_s"]
    ok = v["ok"] and total <= CPU_BUDGET_S * 1.1
    record.update(
        status="ok" if ok else "failed", final="final", summary=summary, runs=runs,
        reason=None if ok else f"final run: max R-hat {v['max_r_hat']:.4f}, min bulk ESS {v['min_ess_bulk']:.0f}, "
        f"{total:.0f} s CPU in all",
    )
    return record


def load(name: str) -> dict | None:
    path = OUT / f"{name}.json.gz"
    if not path.exists():
        return None
    with gzip.open(path, "rt") as f:
        return json.load(f)


def write_report() -> None:
    rows = []
    for name, kind, _ in PROGRAMS:
        rec = load(name)
        if rec is None:
            rows.append(f"| {name} | {kind} | — | not run yet | | | | | | |")
            continue
        final = rec["runs"].get(rec.get("final") or "pilot") or rec["runs"]["pilot"]
        v = final["verdict"]
        s = final["settings"]
        rows.append(
            f"| {name} | {kind} | {rec['dim']} | {rec['status']}"
            f"{'' if rec['status'] == 'ok' else ': ' + str(rec.get('reason'))} | "
            f"4 × ({s['num_warmup']} + {s['num_samples']}) | {v['max_r_hat']:.4f} | {v['min_ess_bulk']:.0f} | "
            f"{v['min_ess_tail']:.0f} | {final['divergences']} | {final['cpu_s']:.0f} ({final['wall_s']:.0f}) |"
        )
    lines = [
        "# High-dimensional reference posteriors (Stan NUTS via pystan)",
        "",
        "Written by `benchmarks/high_dim_references.py` from `benchmarks/results/high_dim_references/*.json.gz`",
        "(per-scalar summaries; no raw draws). Criteria: every scalar of the parameters block with R-hat <= "
        f"{MAX_RHAT} and bulk ESS >= {TARGET_ESS:.0f}, within {CPU_BUDGET_S:.0f} s of sampling CPU (pilot + final).",
        "Chains run one after another on one core; CPU s = Stan's sampling (warmup included), wall in brackets.",
        "",
        "| program | kind | D | status | chains × (warmup + draws) | max R-hat | min bulk ESS | min tail ESS "
        "| divergences | CPU s (wall) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    for name, _, _ in PROGRAMS:
        rec = load(name)
        if rec:
            lines.append("")
            lines.append(f"- `{name}`: commit {rec['commit']}, load at start {rec['load_at_start']}, "
                         f"compile {rec['compile_s']:.0f} s, runs: " + "; ".join(
                             f"{k} seed {r['seed']} {r['settings']} {r['cpu_s']:.0f} s CPU, "
                             f"{r['leapfrog_steps_sampling']} leapfrog steps after warmup"
                             for k, r in rec["runs"].items()))
    REPORT.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", nargs="*", default=None)
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        for name, kind, extra in PROGRAMS:
            if args.programs and name not in args.programs:
                continue
            if load(name) is not None:
                print(f"[{name}] done already", flush=True)
                continue
            print(f"[{name}] start, load {os.getloadavg()}", flush=True)
            rec = reference(name, kind, extra)
            atomic_write(OUT / f"{name}.json.gz", gzip.compress(json.dumps(rec).encode()))
            (OUT / f"{name}.pilot.json.gz").unlink(missing_ok=True)
            write_report()
    write_report()


if __name__ == "__main__":
    main()
