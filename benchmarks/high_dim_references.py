"""High-dimensional reference posteriors: long Stan NUTS runs (pystan) on posteriordb programs without reference draws.

For each program (``../shared/data/posteriordb/<name>/model.stan`` + ``data.json``; D = unconstrained dimension
from ~400 to ~5,000): a pilot of 4 chains x (1,000 warmup + 1,000 draws) gives the smallest bulk ESS per draw;
the final run is 4 fresh chains (new seeds) long enough that every parameter reaches R-hat <= 1.01 and bulk
ESS >= 1,000 (draws = 1,000 x 1.3 / smallest bulk ESS per pilot draw, at least 1,000). Each chain is its own
pystan call in ONE worker process (httpstan's process pool is replaced by a one-worker pool) under its own seed,
so the sampling CPU seconds are Stan's own on one core. A program whose pilot predicts more than 1 CPU-hour in
all (pilot + final), or whose final run misses the criteria, is recorded as failed (and not used as a
reference); a chain is stopped when it alone would take the program past the hour.

Checkpoints (an interruption loses at most the chain in flight): every finished chain's parameter draws and
sampler statistics go to ``runs/high_dim_references/<name>/<phase>-<k>.npz`` (scratch, gitignored; removed once
the program's record is written), its timing to ``<phase>-<k>.json``; a rerun picks up there.

Saved per program (``benchmarks/results/high_dim_references/<name>.json.gz``; never raw draws): for every
scalar of the Stan ``parameters`` block (constrained, Stan's names, ``theta[3]``, ``L[2,1]`` row-major in the
brackets) the mean, sd, quantiles 5/25/50/75/95, MCSE of mean and sd, R-hat (rank-normalized split), bulk and
tail ESS (ArviZ); the unconstrained dimension; seeds, settings, sampling wall and CPU seconds (per chain and in
all), leapfrog steps, divergences, tree depth hits, step sizes, compile seconds, for the pilot and the final
run. A failed pilot leaves ``<name>.pilot.json.gz`` beside it (its summary, a provisional reference).

Run (long: hours; one core, niced, in the background; resumable: finished programs are skipped):
  OMP_NUM_THREADS=1 nice -n 10 python benchmarks/high_dim_references.py > runs/refs.log 2>&1 &
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
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from provenance import git_commit

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data" / "posteriordb"
OUT = ROOT / "results" / "high_dim_references"
REPORT = ROOT / "results" / "high_dim_references.md"
CHECKPOINTS = ROOT.parent / "runs" / "high_dim_references"

# (name, kind, sampler settings beyond Stan's defaults)
PROGRAMS = [  # cheapest first (gradient cost x expected mixing), so the references come in as early as they can
    ("lsat_data-lsat_model", "Rasch random-effects model", {}),
    ("fims_Aus_Jpn_irt-2pl_latent_reg_irt", "IRT 2PL with latent regression", {}),
    ("science_irt-grsm_latent_reg_irt", "IRT graded rating scale with latent regression", {}),
    ("radon_all-radon_hierarchical_intercept_noncentered", "hierarchical regression (radon, varying intercept)", {}),
    ("sat-hier_2pl", "hierarchical IRT 2PL (correlated item parameters)", {}),
    (
        "radon_all-radon_variable_intercept_slope_noncentered",
        "hierarchical regression (radon, varying intercept and slope)",
        {},
    ),
    ("Mth_data-Mth_model", "capture-recapture GLMM (logit-normal individual effects)", {}),
    ("traffic_accident_nyc-bym2_offset_only", "BYM2 spatial Poisson", {}),
    ("ovarian-logistic_regression_rhs", "logistic regression, regularized horseshoe", {"delta": 0.95}),
]
PILOT = dict(num_warmup=1000, num_samples=1000)
TARGET_ESS = 1000.0
MAX_RHAT = 1.01
SAFETY = 1.3
CPU_BUDGET_S = 3600.0
SEED_PILOT, SEED_FINAL = 20250, 20251  # chain k (1-4) runs under seed 1000 x SEED + k
CHAINS = 4


def stanc_info(model_path: Path) -> dict:
    import httpstan

    stanc = Path(httpstan.__file__).parent / "stanc"
    out = subprocess.run([str(stanc), "--info", str(model_path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def one_worker_pool() -> concurrent.futures.ProcessPoolExecutor:
    """Replace httpstan's process pool (one worker per CPU) by one worker: the chain runs on one core."""
    import httpstan.services_stub as stub

    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=1, mp_context=mp.get_context("fork"), initializer=stub.init_worker
    )
    stub.executor = pool
    return pool


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class CpuWatchdog:
    """Kill the pool's worker once it has used ``limit_s`` CPU seconds (checked every few seconds): a chain that
    alone would take the program past its CPU budget is stopped, not waited for."""

    def __init__(self, pool: concurrent.futures.ProcessPoolExecutor, limit_s: float, every_s: float = 5.0):
        self.pool, self.limit_s, self.every_s = pool, limit_s, every_s
        self.fired = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self.every_s):
            for pid in list(getattr(self.pool, "_processes", {}) or {}):
                if _proc_cpu(pid) > self.limit_s:
                    self.fired = True
                    os.kill(pid, signal.SIGKILL)


def flat_names(name: str, shape: tuple[int, ...]) -> list[str]:
    if not shape:
        return [name]
    return [f"{name}[{','.join(str(i + 1) for i in idx)}]" for idx in np.ndindex(*shape)]


SAMPLER_FIELDS = ("n_leapfrog__", "divergent__", "treedepth__", "stepsize__", "accept_stat__")


def run_chain(code: str, data: dict, params: list[str], seed: int, settings: dict, cpu_limit_s: float) -> dict:
    """One NUTS chain (pystan, one worker process) under ``seed``: its parameter draws ``x`` ``(draws, K)``
    (row-major within each parameter), sampler statistics ``(draws,)`` each, names, timing. Stopped (and
    ``stopped=True``) once the worker passes ``cpu_limit_s`` CPU seconds."""
    import stan

    t0 = time.perf_counter()
    posterior = stan.build(code, data=data, random_seed=seed)  # cached model: ~1 s
    build_s = time.perf_counter() - t0
    pool = one_worker_pool()
    cpu0, t0 = children_cpu(), time.perf_counter()
    try:
        with CpuWatchdog(pool, cpu_limit_s) as dog:
            try:
                fit = posterior.sample(num_chains=1, **settings)
            except Exception as e:  # the worker was killed (or the chain failed)
                if not dog.fired:
                    raise
                fit = None
                err = str(e)[:200]
    finally:
        pool.shutdown(wait=True)  # the worker is reaped: its CPU time is now in RUSAGE_CHILDREN
    timing = {"seed": seed, "wall_s": time.perf_counter() - t0, "cpu_s": children_cpu() - cpu0, "build_s": build_s}
    drop_cached_fits(posterior.model_name)
    if fit is None:
        return {**timing, "stopped": True, "error": err}
    dims = dict(zip(fit.param_names, fit.dims))
    cols, names = [], []
    for p in params:
        a = np.asarray(fit[p])  # (*shape, draws)
        cols.append(a.reshape(-1, a.shape[-1]))
        names += flat_names(p, tuple(dims[p]))
    x = np.ascontiguousarray(np.concatenate(cols, 0).T)  # (draws, K)
    stats = {f.strip("_"): np.asarray(fit[f]).reshape(-1) for f in SAMPLER_FIELDS}
    first = {p: np.asarray(fit[p])[..., 0].reshape(dims[p]).tolist() for p in params}
    dim = len(posterior.unconstrain_pars(first))
    return {**timing, "stopped": False, "x": x, "names": names, "stats": stats, "dim": dim}


def chains(name: str, phase: str, code: str, data: dict, params: list[str], base_seed: int, settings: dict,
           budget_s: float, used_s: float, early_stop=None) -> tuple[list[dict], str | None]:  # fmt: skip
    """Run (or pick up from the checkpoints) CHAINS chains of one phase. Returns the chains (timing,
    ``x``, ``stats``) and a reason when the phase had to stop (budget, or ``early_stop(done_chains)``)."""
    folder = CHECKPOINTS / name
    folder.mkdir(parents=True, exist_ok=True)
    done: list[dict] = []
    for k in range(1, CHAINS + 1):
        meta_path, arr_path = folder / f"{phase}-{k}.json", folder / f"{phase}-{k}.npz"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
        if meta is not None and meta.get("settings") == settings and arr_path.exists():
            with np.load(arr_path) as z:
                meta["x"] = z["x"]
                meta["stats"] = {f: z[f] for f in z.files if f != "x"}
            print(f"[{name}] {phase} chain {k}: from the checkpoint ({meta['cpu_s']:.0f} s CPU)", flush=True)
        else:
            spent = used_s + sum(c["cpu_s"] for c in done)
            left = budget_s - spent
            if left <= 0:
                return done, f"{phase}: CPU budget spent ({spent:.0f} s) before chain {k}"
            seed = 1000 * base_seed + k
            print(f"[{name}] {phase} chain {k} (seed {seed}, {settings}), load {os.getloadavg()[0]:.1f}", flush=True)
            c = run_chain(code, data, params, seed, settings, left)
            if c["stopped"]:
                return done, (f"{phase} chain {k} stopped after {c['cpu_s']:.0f} s CPU: the program would pass "
                              f"{budget_s:.0f} s CPU ({spent:.0f} s before it)")  # fmt: skip
            meta = {k2: v for k2, v in c.items() if k2 not in ("x", "stats")} | {"settings": settings, "chain": k}
            tmp = arr_path.with_name(arr_path.stem + ".tmp.npz")
            np.savez(tmp, x=c["x"], **c["stats"])
            os.replace(tmp, arr_path)
            atomic_write(meta_path, json.dumps(meta).encode())
            meta.update(x=c["x"], stats=c["stats"])
            print(f"[{name}] {phase} chain {k}: {c['cpu_s']:.0f} s CPU ({c['wall_s']:.0f} s wall)", flush=True)
        done.append(meta)
        why = early_stop(done) if early_stop else None
        if why:
            return done, why
    return done, None


def summarize(xs: list[np.ndarray], names: list[str]) -> dict:
    """Per-scalar summary of the parameters block (constrained) from chains ``xs`` (each ``(draws, K)``)."""
    import arviz as az

    az.Numba.disable_numba()  # ArviZ 0.23's numba path of mcse(method="sd") fails on numpy 2.4
    x = np.stack(xs)  # (chain, draw, K)
    k = x.shape[-1]
    ds = az.convert_to_dataset({"x": x})
    stat = lambda f, **kw: np.asarray(f(ds, **kw)["x"].values, dtype=float)
    flat = x.reshape(-1, k)
    q = np.quantile(flat, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):  # scalars fixed by a constraint: sd 0, R-hat NaN
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
    return {key: (v if key == "names" else [float(t) for t in v]) for key, v in summary.items()}


def sampler_stats(cs: list[dict]) -> dict:
    st = lambda f: np.concatenate([c["stats"][f] for c in cs])
    return {
        "leapfrog_steps_sampling": int(st("n_leapfrog").sum()),
        "divergences": int(st("divergent").sum()),
        "max_treedepth_seen": int(st("treedepth").max()),
        "step_size_per_chain": [float(c["stats"]["stepsize"][0]) for c in cs],
        "mean_accept_stat": float(st("accept_stat").mean()),
    }


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


def phase_record(cs: list[dict], base_seed: int, settings: dict, v: dict | None) -> dict:
    return {
        "seeds": [c["seed"] for c in cs],
        "base_seed": base_seed,
        "chains": len(cs),
        "settings": settings,
        "cpu_s": sum(c["cpu_s"] for c in cs),
        "wall_s": sum(c["wall_s"] for c in cs),
        "cpu_s_per_chain": [c["cpu_s"] for c in cs],
        "wall_s_per_chain": [c["wall_s"] for c in cs],
        **(sampler_stats(cs) if cs else {}),
        "verdict": v,
    }


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
        "name": name,
        "kind": kind,
        "stan_parameters": params,
        "criteria": {"max_r_hat": MAX_RHAT, "min_ess_bulk": TARGET_ESS, "cpu_budget_s": CPU_BUDGET_S},
        "versions": {"pystan": getattr(stan, "__version__", "3"), "python": platform.python_version()},
        "commit": git_commit(),
        "command": " ".join(sys.argv),
        "host": platform.node(),
        "load_at_start": os.getloadavg(),
    }
    t0 = time.perf_counter()
    stan.build(code, data=data, random_seed=SEED_PILOT)  # compiles once (httpstan caches the model)
    record["compile_s"] = time.perf_counter() - t0  # 0-2 s when httpstan has the model cached
    runs: dict = {}
    pilot_settings = {**PILOT, **extra}
    pilot_iters = CHAINS * (PILOT["num_warmup"] + PILOT["num_samples"])

    def pilot_too_slow(
        done: list[dict],
    ) -> str | None:  # after each pilot chain: would the pilot alone pass the budget?
        per_chain = sum(c["cpu_s"] for c in done) / len(done)
        if len(done) < CHAINS and per_chain * CHAINS > CPU_BUDGET_S:
            return (f"pilot: {len(done)} chain(s) took {per_chain:.0f} s CPU each; {CHAINS} chains alone would pass "
                    f"{CPU_BUDGET_S:.0f} s")  # fmt: skip
        return None

    cs, why = chains(name, "pilot", code, data, params, SEED_PILOT, pilot_settings, CPU_BUDGET_S, 0.0, pilot_too_slow)
    record["dim"] = cs[0]["dim"] if cs else None  # D, unconstrained
    used = sum(c["cpu_s"] for c in cs)
    if why:
        runs["pilot"] = phase_record(cs, SEED_PILOT, pilot_settings, None)
        record.update(status="failed", reason=why, runs=runs)
        return record
    names = json.loads((CHECKPOINTS / name / "pilot-1.json").read_text())["names"]
    summary = summarize([c["x"] for c in cs], names)
    v = verdict(summary)
    runs["pilot"] = phase_record(cs, SEED_PILOT, pilot_settings, v)
    print(f"[{name}] pilot: {used:.0f} s CPU, {v}", flush=True)
    if v["ok"]:
        record.update(status="ok", final="pilot", summary=summary, runs=runs)
        return record
    record["pilot_summary"] = summary  # kept: a provisional reference while the final run goes
    atomic_write(OUT / f"{name}.pilot.json.gz", gzip.compress(json.dumps({**record, "runs": runs}).encode()))
    ess_per_draw = min(v["min_ess_bulk"], TARGET_ESS) / (CHAINS * PILOT["num_samples"])
    draws = max(
        PILOT["num_samples"], int(math.ceil(TARGET_ESS * SAFETY / max(ess_per_draw, 1e-6) / CHAINS / 100) * 100)
    )
    predicted = used / pilot_iters * CHAINS * (PILOT["num_warmup"] + draws)
    record["final_draws_per_chain"] = draws
    record["predicted_final_cpu_s"] = predicted
    if used + predicted > CPU_BUDGET_S:
        record.update(
            status="failed",
            reason=(
                f"pilot: min bulk ESS {v['min_ess_bulk']:.0f} / {CHAINS * PILOT['num_samples']} draws, max R-hat "
                f"{v['max_r_hat']:.3f}; {draws} draws per chain predicted at {predicted:.0f} s CPU + {used:.0f} s used "
                f"> {CPU_BUDGET_S:.0f} s"
            ),
            runs=runs,
        )
        return record
    final_settings = {"num_warmup": PILOT["num_warmup"], "num_samples": draws, **extra}
    cs, why = chains(name, "final", code, data, params, SEED_FINAL, final_settings, CPU_BUDGET_S * 1.1, used)
    if why:
        runs["final"] = phase_record(cs, SEED_FINAL, final_settings, None)
        record.update(status="failed", reason=why, runs=runs)
        return record
    summary = summarize([c["x"] for c in cs], names)
    v = verdict(summary)
    runs["final"] = phase_record(cs, SEED_FINAL, final_settings, v)
    total = used + runs["final"]["cpu_s"]
    print(f"[{name}] final: {runs['final']['cpu_s']:.0f} s CPU, {v}", flush=True)
    ok = v["ok"] and total <= CPU_BUDGET_S * 1.1
    record.update(
        status="ok" if ok else "failed",
        final="final",
        summary=summary,
        runs=runs,
        reason=None
        if ok
        else f"final run: max R-hat {v['max_r_hat']:.4f}, min bulk ESS {v['min_ess_bulk']:.0f}, "
        f"{total:.0f} s CPU in all",
    )
    return record


def load(name: str) -> dict | None:
    path = OUT / f"{name}.json.gz"
    if not path.exists():
        return None
    with gzip.open(path, "rt") as f:
        return json.load(f)


def _fmt(x, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def parts() -> dict:
    """What the report is written from: each program's record (None before it has one) and whether a provisional
    pilot summary lies beside it."""
    return {name: {"record": load(name), "pilot": (OUT / f"{name}.pilot.json.gz").exists()} for name, _, _ in PROGRAMS}


def write_report() -> None:
    REPORT.write_text(markdown(parts()))


def markdown(payload: dict) -> str:
    """The report from :func:`parts`' records (nothing else is read)."""
    rows, notes = [], []
    for name, kind, _ in PROGRAMS:
        rec = (payload.get(name) or {}).get("record")
        if rec is None:
            pilot = (payload.get(name) or {}).get("pilot")
            state = "pilot done (provisional summary kept), final run not finished" if pilot else "not run yet"
            rows.append(f"| {name} | {kind} | — | {state} | | | | | | | |")
            continue
        final = rec["runs"].get(rec.get("final") or "pilot") or rec["runs"]["pilot"]
        v = final.get("verdict") or {}
        s = final["settings"]
        total = sum(r["cpu_s"] for r in rec["runs"].values())
        rows.append(
            f"| {name} | {kind} | {_fmt(rec.get('dim'), 'd')} | {rec['status']}"
            f"{'' if rec['status'] == 'ok' else ': ' + str(rec.get('reason'))} | "
            f"{final['chains']} × ({s['num_warmup']} + {s['num_samples']}) | {_fmt(v.get('max_r_hat'), '.4f')} | "
            f"{_fmt(v.get('min_ess_bulk'), '.0f')} | {_fmt(v.get('min_ess_tail'), '.0f')} | "
            f"{_fmt(final.get('divergences'), 'd')} | {final['cpu_s']:.0f} ({final['wall_s']:.0f}) | {total:.0f} |"
        )
        notes += ["", f"- `{name}`: commit {rec['commit']}, load at start {tuple(round(x, 1) for x in rec['load_at_start'])}, "
                  f"compile {rec['compile_s']:.0f} s; " + "; ".join(
                      f"{k}: seeds {r['seeds']}, {r['settings']}, CPU s per chain "
                      f"{[round(c) for c in r['cpu_s_per_chain']]}, {r.get('leapfrog_steps_sampling', '—')} leapfrog "
                      f"steps after warmup, step sizes {[round(x, 4) for x in r.get('step_size_per_chain', [])]}, "
                      f"max tree depth {r.get('max_treedepth_seen', '—')}"
                      for k, r in rec["runs"].items())]  # fmt: skip
    lines = [
        "# High-dimensional reference posteriors (Stan NUTS via pystan)",
        "",
        "Written by `benchmarks/high_dim_references.py` from `benchmarks/results/high_dim_references/*.json.gz`",
        "(per-scalar summaries; no raw draws). Criteria: every scalar of the parameters block with R-hat <= "
        f"{MAX_RHAT} and bulk ESS >= {TARGET_ESS:.0f}, within {CPU_BUDGET_S:.0f} s of sampling CPU (pilot + final).",
        "Each chain runs alone on one core (one worker process); CPU s = Stan's sampling (warmup included) of the "
        "run the reference comes from, wall in brackets (a shared, loaded machine: wall is not comparable); the "
        "last column is the pilot and the final run together.",
        "",
        "| program | kind | D | status | chains × (warmup + draws) | max R-hat | min bulk ESS | min tail ESS "
        "| divergences | CPU s (wall) | CPU s in all |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        *notes,
    ]
    return "\n".join(lines) + "\n"


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
            if rec["status"] == "ok":
                (OUT / f"{name}.pilot.json.gz").unlink(missing_ok=True)
            shutil.rmtree(CHECKPOINTS / name, ignore_errors=True)  # the chains' draws: scratch, no longer needed
            write_report()
    write_report()


if __name__ == "__main__":
    main()
