"""posteriordb_all: every posteriordb posterior through the Stan bridge, the default ``varinf.fit`` against Stan's NUTS.

For each of the 41 posteriors with reference draws in ``../shared/data/posteriordb`` (``index.json``:
``with_reference``), four stages, each in a fresh subprocess with a limit (one hang or crash cannot stop the run):

1. ``compile``: ``varinf.StanModel(model.stan, data.json)`` compiles the program through varinf's Stan bridge
   (niced; wall and CPU seconds of the compiler, or "cached" when an identical program was compiled before);
2. ``fit``: ``varinf.fit(model, seed=0)``, the default, diagnostics included (pinned core, one thread; wall and
   CPU seconds, gradient evaluations, route, k-hat, every warning raised). Then, against the reference draws
   (max over the reference quantities of |mean error| in reference sds, and the range of sd ratios), both
   ``res.summary()``'s estimates (PSIS-corrected when the fit says so) and ``res.draws(4000)`` (which kind of draws
   they are is recorded);
3. ``nuts_compile``: ``stan.build`` (pystan 3 on httpstan: Stan's own C++ build, niced);
4. ``nuts``: Stan's NUTS, 4 chains x 1,000 warm-up + 1,000 draws, run one after another on the pinned core
   (four single-chain calls, seeds 1-4): sampling seconds (wall of the calls, Stan's own elapsed times, CPU
   of the sampler processes), leapfrog steps (``n_leapfrog__`` summed over warm-up and draws, and over draws
   alone), divergences, and its error against the same reference.

For the 98 posteriors without reference draws (``without_reference``): ``compile`` and ``fit`` only; a fit
completes, fails with an error (recorded with its type, where it was raised and whether it is one line), or
exceeds the limit (600 CPU seconds, or 1,800 wall seconds for a process that stops using CPU: a hang).

Run it (the timed stages need a quiet core; the whole run takes hours)::

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/posteriordb_all.py --group reference > runs/pdb.log 2>&1 &
    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/posteriordb_all.py --group other ...
    python benchmarks/posteriordb_all.py --only arK-arK --redo          # rerun one posterior (every stage)
    python benchmarks/posteriordb_all.py --stages fit --redo            # refit all, keep compiles and NUTS
    python benchmarks/posteriordb_all.py --report                       # markdown from the JSON, nothing run

Results: ``benchmarks/results/posteriordb_all.json`` (one record per posterior, each stage saved atomically as it
finishes, under a lock; an interrupted run resumes where it stopped) and ``posteriordb_all.md`` written from it.
Compiled programs go to ``runs/posteriordb_all-cache`` (``--cache``; both varinf's and httpstan's), so compile
times are measured on fresh caches. Never imported by the package.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import _results

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = REPO.parent / "shared" / "data" / "posteriordb"
OUT = HERE / "results" / "posteriordb_all"
CACHE = REPO / "runs" / "posteriordb_all-cache"

STAGES = ("compile", "fit", "nuts_compile", "nuts")
PREREQ = {"fit": "compile", "nuts": "nuts_compile"}  # a stage runs once its program is compiled
GROUP_STAGES = {"reference": STAGES, "other": ("compile", "fit")}
ERR_TOL, SD_LO, SD_HI, KHAT_MAX = 0.1, 0.9, 1.1, 0.7
FIT_CPU_LIMIT = 600  # seconds of CPU: "exceeds 10 minutes"
FIT_WALL_LIMIT = 1800  # a process that stops using CPU (a hang) is stopped here
COMPILE_WALL_LIMIT = 3600
NUTS_WALL_LIMIT = 3600
NUTS_CHAINS, NUTS_WARMUP, NUTS_DRAWS = 4, 1000, 1000
DRAWS = 4000


# ================================================================================================ worker side
def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def _exception(e: BaseException) -> dict:
    """An exception as the benchmark records it: type, message (one line), whether the message was one line,
    and where it was raised (the innermost frame's file, relative to site-packages or the repository)."""
    tb, where = e.__traceback__, ""
    while tb is not None:
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    where = re.sub(r".*/site-packages/", "", where)
    where = where.replace(str(REPO) + "/", "")
    msg = str(e)
    return {"type": type(e).__name__, "module": type(e).__module__, "message": _one_line(msg, 400),
            "one_line": "\n" not in msg.strip() and msg.strip() != "", "raised_at": where}  # fmt: skip


def _warning_records(caught, stage: str) -> list[dict]:
    out, seen = [], set()
    for w in caught:
        key = (w.category.__name__, str(w.message))
        if key in seen:
            continue
        seen.add(key)
        out.append({"category": w.category.__name__, "module": w.category.__module__, "stage": stage,
                    "text": _one_line(w.message, 240)})  # fmt: skip
    return out


def _compare(columns: dict, ref_names, ref_mean, ref_sd, weights=None) -> dict:
    """max |mean error| / ref sd and the sd-ratio range of ``columns`` ({name: (S,) array}) against the reference."""
    import numpy as np

    missing = [n for n in ref_names if n not in columns]
    if missing:
        return {"missing": missing[:10], "n_missing": len(missing)}
    x = np.stack([np.asarray(columns[n], dtype=np.float64) for n in ref_names], 1)
    mean, sd = x.mean(0), x.std(0, ddof=1)
    return _errors(mean, sd, ref_names, ref_mean, ref_sd)


def _errors(mean, sd, ref_names, ref_mean, ref_sd) -> dict:
    import numpy as np

    mean, sd = np.asarray(mean, dtype=np.float64), np.asarray(sd, dtype=np.float64)
    err = np.abs(mean - ref_mean) / ref_sd
    ratio = sd / ref_sd
    bad = ~np.isfinite(err) | ~np.isfinite(ratio)
    err = np.where(np.isfinite(err), err, np.inf)
    worst = int(np.argmax(err))
    ratio_dev = np.where(np.isfinite(ratio), np.abs(np.log(np.where(ratio > 0, ratio, 1e-300))), np.inf)
    return {"max_mean_err": float(err.max()), "worst": ref_names[worst],
            "sd_ratio_min": float(np.nanmin(np.where(np.isfinite(ratio), ratio, np.nan))) if not bad.all() else None,
            "sd_ratio_max": float(np.nanmax(np.where(np.isfinite(ratio), ratio, np.nan))) if not bad.all() else None,
            "worst_sd": ref_names[int(np.argmax(ratio_dev))], "nonfinite": int(bad.sum())}  # fmt: skip


def accurate(c: dict | None) -> bool | None:
    """Within 0.1 reference sd and sd ratios in [0.9, 1.1] (None when not compared)."""
    if not c or "max_mean_err" not in c:
        return None
    lo, hi = c.get("sd_ratio_min"), c.get("sd_ratio_max")
    return (c["nonfinite"] == 0 and c["max_mean_err"] <= ERR_TOL and lo is not None and hi is not None
            and SD_LO <= lo and hi <= SD_HI)  # fmt: skip


def _reference(name: str):
    from varinf.posteriordb import load_posterior

    post = load_posterior(name, DATA)
    ref = post.reference
    return list(ref.names), ref.mean, ref.sd


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def worker_compile(name: str) -> dict:
    import varinf

    folder = DATA / name
    t0, c0, k0 = time.perf_counter(), time.process_time(), _child_cpu()
    m = varinf.StanModel(folder / "model.stan", folder / "data.json", progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0 + _child_cpu() - k0
    lib = Path(m.library_path)
    cached = lib.stat().st_mtime < time.time() - wall - 1.0  # built before this process started compiling
    return {"status": "ok", "wall_s": wall, "cpu_s": cpu, "cached": cached, "dim": m.dim,
            "program": lib.parent.name}  # fmt: skip


def _draws_kind(res) -> str:
    """What ``res.draws()`` returns on this code: q's own draws, or PSIS-resampled ones."""
    import inspect

    params = inspect.signature(res.draws).parameters
    if "corrected" not in params:
        return "q"  # no choice offered: q's own draws
    default = params["corrected"].default
    if default is False:
        return "q"
    return "psis-resampled" if res.psis_corrected else "q"


def worker_fit(name: str, with_reference: bool) -> dict:
    import warnings

    import torch

    import varinf

    torch.set_num_threads(1)
    folder = DATA / name
    t0 = time.perf_counter()
    m = varinf.StanModel(folder / "model.stan", folder / "data.json", progress=False)
    rec = {"status": "ok", "dim": m.dim, "load_s": time.perf_counter() - t0,
           "torch_threads": torch.get_num_threads()}  # fmt: skip
    warns = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t1, c1 = time.perf_counter(), time.process_time()
        try:
            res = varinf.fit(m, seed=0)
        except Exception as e:
            rec.update(status="error", wall_s=time.perf_counter() - t1, cpu_s=time.process_time() - c1,
                       error=_exception(e), warnings=_warning_records(caught, "fit"))  # fmt: skip
            return rec
        rec.update(wall_s=time.perf_counter() - t1, cpu_s=time.process_time() - c1)
        warns += _warning_records(caught, "fit")
    d = res.diagnostics
    rec.update(
        method=res.method, route=list(res.route), route_reason=_one_line(res.route_reason, 200),
        family=res.family_label, converged=bool(res.converged), convergence=_one_line(res.convergence_reason, 160),
        steps=res.num_steps, grad_evals=res.grad_evals, density_evals=res.density_evals,
        fit_s=res.wall_time, diagnostics_s=res.diagnostics_time,
        khat=None if d is None else float(d.khat), verdict=None if d is None else d.verdict,
        ess=None if d is None else float(d.ess), psis_shift=None if d is None else float(d.psis_shift),
        summary_corrected=bool(res.psis_corrected), draws_kind=_draws_kind(res),
    )  # fmt: skip
    if with_reference:
        import numpy as np

        names, mean, sd = _reference(name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                s = res.summary(seed=1).to_dict()
                cols = [s.get(n) for n in names]
                if any(c is None for c in cols):
                    rec["summary"] = {"missing": [n for n, c in zip(names, cols) if c is None][:10]}
                else:
                    rec["summary"] = _errors([c["mean"] for c in cols], [c["sd"] for c in cols], names, mean, sd)
            except Exception as e:
                rec["summary"] = {"error": _exception(e)}
            warns += _warning_records(caught, "summary")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                draws = res.draws(DRAWS, seed=2)
                cols = {k: v.double().numpy() for k, v in m.columns(draws).items()}
                rec["draws"] = _compare(cols, names, mean, sd)
                rec["draws"]["n"] = DRAWS
                rec["draws"]["distinct"] = int(np.unique(np.stack([cols[n] for n in names], 1), axis=0).shape[0])
            except Exception as e:
                rec["draws"] = {"error": _exception(e)}
            warns += _warning_records(caught, "draws")
    rec["warnings"] = warns
    return rec


def _httpstan_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of each of httpstan's sampler processes, read from /proc."""
    import httpstan.services_stub as stub

    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in list(getattr(stub.executor, "_processes", None) or {}):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return out


def _stan_build(name: str, seed: int | None = None):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pystan imports pkg_resources
        import stan
    folder = DATA / name
    data = json.loads((folder / "data.json").read_text())
    return stan.build((folder / "model.stan").read_text(), data=data, random_seed=seed)


def worker_nuts_compile(name: str) -> dict:
    import httpstan.cache
    import httpstan.models

    code = (DATA / name / "model.stan").read_text()
    model_dir = httpstan.cache.model_directory(httpstan.models.calculate_model_name(code))
    cached = model_dir.is_dir() and any(model_dir.glob("*.so"))
    t0, c0, k0 = time.perf_counter(), time.process_time(), _child_cpu()
    with contextlib.redirect_stdout(sys.stderr):
        _stan_build(name)
    return {"status": "ok", "wall_s": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0 + _child_cpu() - k0, "cached": cached}  # fmt: skip


_ELAPSED = re.compile(r"([0-9.eE+-]+) seconds \((Warm-up|Sampling)\)")


def worker_nuts(name: str) -> dict:
    import httpstan.cache
    import numpy as np

    names, mean, sd = _reference(name)
    chains, leap, leap_draws, div, elapsed = [], 0, 0, 0, {"Warm-up": 0.0, "Sampling": 0.0}
    wall = cpu = build_s = 0.0
    for chain in range(NUTS_CHAINS):
        b0 = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            post = _stan_build(name, seed=chain + 1)
        build_s += time.perf_counter() - b0
        fits = httpstan.cache.model_directory(post.model_name) / "fits"
        for p in fits.glob("*.jsonlines.gz"):  # a cached fit would be returned without sampling
            p.unlink()
        before = _httpstan_cpu()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            fit = post.sample(num_chains=1, num_warmup=NUTS_WARMUP, num_samples=NUTS_DRAWS, save_warmup=True)
        wall += time.perf_counter() - t0
        after = _httpstan_cpu()
        cpu += sum(v - before.get(pid, 0.0) for pid, v in after.items())
        for p in fits.glob("*.jsonlines.gz"):
            p.unlink()
        rows = list(fit.sample_and_sampler_param_names) + list(fit.constrained_param_names)
        x = fit._draws[:, :, 0]  # (rows, warm-up + draws)
        n_leap = x[rows.index("n_leapfrog__")]
        leap += int(n_leap.sum())
        leap_draws += int(n_leap[NUTS_WARMUP:].sum())
        div += int(x[rows.index("divergent__"), NUTS_WARMUP:].sum())
        for out in fit.stan_outputs:  # Stan's own clock, from its logger messages (repeated in other topics)
            for line in out.decode("utf-8", "replace").splitlines():
                if '"topic":"logger"' in line.replace(" ", ""):
                    for kind_s, kind in _ELAPSED.findall(line):
                        elapsed[kind] += float(kind_s)
        chains.append(x[:, NUTS_WARMUP:])
    rows = list(fit.sample_and_sampler_param_names) + list(fit.constrained_param_names)
    flat = np.concatenate(chains, 1)
    cols = {_stan_column(r): flat[i] for i, r in enumerate(rows) if not r.endswith("__")}
    cmp = _compare(cols, names, mean, sd)
    return {"status": "ok", "wall_s": wall, "cpu_s": cpu, "stan_warmup_s": elapsed["Warm-up"],
            "stan_sampling_s": elapsed["Sampling"], "build_calls_s": build_s, "leapfrog": leap,
            "leapfrog_draws": leap_draws, "divergent": div, "chains": NUTS_CHAINS, "warmup": NUTS_WARMUP,
            "draws": NUTS_DRAWS, "reference": cmp}  # fmt: skip


def _stan_column(flat: str) -> str:
    """``theta.2.3`` -> ``theta[2,3]``."""
    head, _, rest = flat.partition(".")
    return f"{head}[{rest.replace('.', ',')}]" if rest else head


def worker(stage: str, name: str, with_reference: bool) -> None:
    try:
        if stage == "compile":
            rec = worker_compile(name)
        elif stage == "fit":
            rec = worker_fit(name, with_reference)
        elif stage == "nuts_compile":
            rec = worker_nuts_compile(name)
        else:
            rec = worker_nuts(name)
    except Exception as e:
        rec = {"status": "error", "error": _exception(e)}
    rec["load_end"] = list(os.getloadavg())
    print("RESULT " + json.dumps(rec, allow_nan=True), flush=True)


# ================================================================================================ driver side
def _limits(stage: str) -> tuple[float, int | None, int]:
    """(wall limit, CPU limit or None, niceness) of a stage's subprocess."""
    if stage == "fit":
        return FIT_WALL_LIMIT, FIT_CPU_LIMIT, 0
    if stage == "nuts":
        return NUTS_WALL_LIMIT, None, 0
    return COMPILE_WALL_LIMIT, None, 15


def run_stage(stage: str, name: str, with_reference: bool, cache: Path) -> dict:
    """One stage in a fresh process, its result as recorded (see :func:`spawn`)."""
    wall_limit, cpu_limit, nice = _limits(stage)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VARINF_CACHE_DIR": str(cache / "varinf"),
           "XDG_CACHE_HOME": str(cache / "xdg"), "PYTHONWARNINGS": "ignore::DeprecationWarning"}  # fmt: skip
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", stage, name]
    if with_reference:
        cmd.append("--with-reference")
    return spawn(cmd, env, wall_limit, cpu_limit, nice)


def spawn(cmd: list[str], env: dict | None, wall_limit: float, cpu_limit: int | None, nice: int = 0) -> dict:
    """Run ``cmd`` in its own session (a timeout kills its sampler processes too), at most ``wall_limit`` seconds
    and ``cpu_limit`` CPU seconds; its result is the JSON after ``RESULT `` on its last such line of output.
    Otherwise: ``timeout`` (which limit), or ``crashed`` (exit status and the end of its stderr)."""

    def setup():
        if nice:
            os.nice(nice)
        if cpu_limit:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_limit, cpu_limit + 30))

    load = list(os.getloadavg())
    t0, k0 = time.perf_counter(), _child_cpu()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, preexec_fn=setup)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=wall_limit)
        timed_out = False
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        timed_out = True
    total, cpu = time.perf_counter() - t0, _child_cpu() - k0
    with contextlib.suppress(ProcessLookupError):  # sampler processes left behind
        os.killpg(proc.pid, signal.SIGKILL)
    line = next((ln for ln in reversed(out.splitlines()) if ln.startswith("RESULT ")), None)
    if line is not None:
        rec = json.loads(line[7:])
    elif timed_out:
        rec = {"status": "timeout", "limit": f"{wall_limit:g} s wall"}
    elif cpu_limit and proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        rec = {"status": "timeout", "limit": f"{cpu_limit} s CPU"}
    else:
        tail = [ln for ln in err.splitlines() if ln.strip()]
        rec = {"status": "crashed", "exit": proc.returncode, "stderr": _one_line(" | ".join(tail[-3:]), 400)}
    rec.update(process_wall_s=total, process_cpu_s=cpu, load_start=load, limit_wall_s=wall_limit,
               limit_cpu_s=cpu_limit, nice=nice)  # fmt: skip
    return rec


@contextlib.contextmanager
def _locked(stem: Path):
    lock = Path(tempfile.gettempdir()) / f"varinf-{hashlib.sha1(str(stem).encode()).hexdigest()[:12]}.lock"
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _merged_meta(old: dict | None, run: dict) -> dict:
    """The JSON's provenance with this run's (``run``, identified by ``run_id``) in place or appended."""
    if not old or old.get("run_id") == run["run_id"]:
        return {**run, **({"reruns": old["reruns"]} if old and old.get("reruns") else {})}
    reruns = [r for r in old.get("reruns", []) if r.get("run_id") != run["run_id"]]
    return {**old, "reruns": [*reruns, run]}


def save_stage(stem: Path, run: dict, name: str, group: str, stage: str | None, rec: dict | None) -> None:
    """Under a lock: read the JSON, put ``rec`` in (posterior ``name``, ``stage``), write it back atomically."""
    with _locked(stem):
        path = stem.with_suffix(".json")
        payload = json.loads(path.read_text()) if path.is_file() else {"records": {}}
        payload["meta"] = _merged_meta(payload.get("meta"), run)
        payload["settings"] = settings()
        if stage is not None:
            r = payload["records"].setdefault(name, {"name": name, "group": group})
            rec = {**rec, "run_id": run["run_id"]}
            r[stage] = rec
            if "dim" in rec:
                r["dim"] = rec["dim"]
        _results.save(stem, payload, markdown)


def settings() -> dict:
    return {"accurate": f"max |mean error| <= {ERR_TOL} reference sd and sd ratios in [{SD_LO}, {SD_HI}]",
            "err_tol": ERR_TOL, "sd_lo": SD_LO, "sd_hi": SD_HI, "khat_max": KHAT_MAX, "draws": DRAWS,
            "fit_cpu_limit_s": FIT_CPU_LIMIT, "fit_wall_limit_s": FIT_WALL_LIMIT,
            "nuts": f"{NUTS_CHAINS} chains x {NUTS_WARMUP} warm-up + {NUTS_DRAWS} draws, one after another"}  # fmt: skip


def _index() -> dict[str, list[dict]]:
    idx = json.loads((DATA / "index.json").read_text())
    return {"reference": idx["with_reference"], "other": idx["without_reference"]}


def run(args) -> None:
    if not (DATA / "index.json").is_file():
        raise SystemExit(f"{DATA}: no posteriordb data (index.json)")
    stem = _results.stem_of(args.out)
    groups = ["reference", "other"] if args.group == "all" else [args.group]
    only = set(args.only.split(",")) if args.only else None
    stages = set(args.stages.split(",")) if args.stages else set(STAGES)
    if stages - set(STAGES):
        raise SystemExit(f"--stages: unknown {sorted(stages - set(STAGES))}; choose from {', '.join(STAGES)}")
    index = _index()
    if only:
        known = {e["name"] for g in index.values() for e in g}
        if only - known:
            raise SystemExit(f"--only: not in {DATA / 'index.json'}: {', '.join(sorted(only - known))}")
    what = f"groups {'+'.join(groups)}, stages {','.join(s for s in STAGES if s in stages)}" + (
        f", posteriors {','.join(sorted(only))}" if only else "") + (" (redo)" if args.redo else "")  # fmt: skip
    meta = _results.provenance(__file__, what=what, cache=str(args.cache))
    meta["run_id"] = uuid.uuid4().hex[:12]
    save_stage(stem, meta, "", "", None, None)
    for group in groups:
        for entry in index[group]:
            name = entry["name"]
            if only and name not in only:
                continue
            for stage in GROUP_STAGES[group]:
                if stage not in stages:
                    continue
                have = json.loads(stem.with_suffix(".json").read_text())["records"].get(name, {})
                done = stage in have and have[stage].get("status") != "crashed"
                if done and (
                    not args.redo
                    or (stage in PREREQ.values() and have[stage].get("status") == "ok" and not args.recompile)
                ):
                    continue  # recorded (a compile already recorded would only find the cache now)
                if stage in PREREQ and have.get(PREREQ[stage], {}).get("status") != "ok":
                    print(f"    {name} {stage}: skipped, {PREREQ[stage]} not done", flush=True)
                    continue
                print(f"[{time.strftime('%H:%M:%S')}] {name} {stage} (load {os.getloadavg()[0]:.1f})", flush=True)
                rec = run_stage(stage, name, group == "reference", Path(args.cache))
                print(f"    {json.dumps(_brief(rec))}", flush=True)
                save_stage(stem, meta, name, group, stage, rec)
    _results.finish(meta)
    save_stage(stem, meta, "", "", None, None)


def _brief(rec: dict) -> dict:
    keys = ("status", "wall_s", "cpu_s", "grad_evals", "khat", "route", "leapfrog", "cached", "limit", "exit")
    out = {k: rec[k] for k in keys if k in rec}
    for k in ("summary", "draws", "reference"):
        if isinstance(rec.get(k), dict):
            out[k] = {kk: rec[k][kk] for kk in ("max_mean_err", "sd_ratio_min", "sd_ratio_max") if kk in rec[k]}
    if "error" in rec:
        out["error"] = rec["error"] if isinstance(rec["error"], str) else rec["error"].get("message")
    if "warnings" in rec:
        out["warnings"] = sorted({w["category"] for w in rec["warnings"]})
    return out


# ================================================================================================ the results
def warned(fit: dict) -> bool:
    """The user was warned: varinf raised a warning (k-hat, mean shift, not converged, ...) during the fit, the
    summary or the draws."""
    return any(w.get("module", "").startswith("varinf") for w in fit.get("warnings", []))


def verdict(rec: dict) -> str:
    """accurate / warned (inaccurate) / warned (accurate) / SILENT FAILURE / failed: the no-silent-failure goal."""
    fit = rec.get("fit", {})
    if fit.get("status") != "ok":
        return "failed"
    ok_s, ok_d = accurate(fit.get("summary")), accurate(fit.get("draws"))
    ok = bool(ok_s) and bool(ok_d)
    if warned(fit):
        return "warned (accurate)" if ok else "warned"
    return "accurate" if ok else "SILENT FAILURE"


def _finite(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _median(xs) -> float | None:
    xs = [x for x in xs if _finite(x)]
    return statistics.median(xs) if xs else None


def _fmt(x, spec=".2f") -> str:
    return _results.fmt(x, spec)


def _cmp_cell(c: dict | None) -> str:
    if not c:
        return "—"
    if "error" in c:
        return f"error: {c['error'].get('type')}"
    if "max_mean_err" not in c:
        return f"missing {', '.join(c.get('missing', []))[:60]}"
    mark = "" if accurate(c) else " ✗"
    return f"{_fmt(c['max_mean_err'])} / {_fmt(c.get('sd_ratio_min'))}–{_fmt(c.get('sd_ratio_max'))}{mark}"


def _warn_cell(fit: dict) -> str:
    cats = {}
    for w in fit.get("warnings", []):
        if w.get("module", "").startswith("varinf"):
            cats.setdefault(w["category"], w["text"])
    return "; ".join(f"{k}: {_short_warning(v)}" for k, v in cats.items())


def _short_warning(text: str) -> str:
    """The first clause of a warning (the reason), without the advice that follows."""
    text = re.sub(r"^[\w.-]+: ", "", text)
    return _one_line(re.split(r"(?<=[.;:])\s", text)[0].rstrip(".;:"), 90).replace("|", "\\|")


def _error_cell(stage: dict) -> str:
    st = stage.get("status")
    if st == "timeout":
        return f"over {stage.get('limit')}"
    if st == "crashed":
        return f"crashed (exit {stage.get('exit')}): {stage.get('stderr', '')[:120]}".replace("|", "\\|")
    e = stage.get("error") or {}
    if isinstance(e, str):
        return e[:160].replace("|", "\\|")
    lines = "" if e.get("one_line", True) else " (message of several lines)"
    return f"{e.get('type')}: {e.get('message', '')[:160]}{lines}".replace("|", "\\|")


def _route(fit: dict) -> str:
    return " → ".join(fit.get("route") or [fit.get("method", "")])


def _ratio(a, b):
    return a / b if _finite(a) and _finite(b) and b > 0 else None


def summarize(payload: dict) -> dict:
    """The goal figures (shared by the markdown and the docs tables)."""
    recs = payload.get("records", {})
    ref = [r for r in recs.values() if r.get("group") == "reference"]
    other = [r for r in recs.values() if r.get("group") == "other"]
    fitted = [r for r in ref if r.get("fit", {}).get("status") == "ok"]
    verdicts = {r["name"]: verdict(r) for r in ref if "fit" in r}
    good_k = [r for r in fitted if _finite(r["fit"].get("khat")) and r["fit"]["khat"] < KHAT_MAX]
    paired = [r for r in fitted if r.get("nuts", {}).get("status") == "ok"]
    nuts_ok = [r for r in ref if r.get("nuts", {}).get("status") == "ok"]

    def both(r):
        return bool(accurate(r["fit"].get("summary"))) and bool(accurate(r["fit"].get("draws")))

    out = {
        "reference_total": len(ref), "reference_fitted": len(fitted),
        "silent": sorted(n for n, v in verdicts.items() if v == "SILENT FAILURE"),
        "failed": sorted(n for n, v in verdicts.items() if v == "failed"),
        "accurate_summary": sum(bool(accurate(r["fit"].get("summary"))) for r in fitted),
        "accurate_draws": sum(bool(accurate(r["fit"].get("draws"))) for r in fitted),
        "accurate_both": sum(both(r) for r in fitted),
        "warned": sum(warned(r["fit"]) for r in fitted),
        "good_khat": len(good_k), "good_khat_accurate": sum(both(r) for r in good_k),
        "good_khat_accurate_summary": sum(bool(accurate(r["fit"].get("summary"))) for r in good_k),
        "paired": len(paired),
        "median_grad_evals": _median([r["fit"]["grad_evals"] for r in fitted]),
        "median_leapfrog": _median([r["nuts"]["leapfrog"] for r in nuts_ok]),
        "median_leapfrog_draws": _median([r["nuts"]["leapfrog_draws"] for r in nuts_ok]),
        "median_grad_ratio": _median([_ratio(r["fit"]["grad_evals"], r["nuts"]["leapfrog"]) for r in paired]),
        "median_grad_ratio_draws": _median([_ratio(r["fit"]["grad_evals"], r["nuts"]["leapfrog_draws"]) for r in paired]),
        "median_fit_wall": _median([r["fit"]["wall_s"] for r in fitted]),
        "median_fit_cpu": _median([r["fit"]["cpu_s"] for r in fitted]),
        "median_nuts_wall": _median([r["nuts"]["wall_s"] for r in nuts_ok]),
        "median_nuts_cpu": _median([r["nuts"]["cpu_s"] for r in nuts_ok]),
        "median_nuts_stan_s": _median([r["nuts"]["stan_warmup_s"] + r["nuts"]["stan_sampling_s"] for r in nuts_ok]),
        "median_wall_ratio": _median([_ratio(r["fit"]["wall_s"], r["nuts"]["wall_s"]) for r in paired]),
        "median_cpu_ratio": _median([_ratio(r["fit"]["cpu_s"], r["nuts"]["cpu_s"]) for r in paired]),
        "median_stan_ratio": _median([_ratio(r["fit"]["wall_s"], r["nuts"]["stan_warmup_s"] + r["nuts"]["stan_sampling_s"])
                                      for r in paired]),
        "nuts_accurate": sum(bool(accurate(r["nuts"].get("reference"))) for r in nuts_ok), "nuts_ok": len(nuts_ok),
        "other_total": len(other),
    }  # fmt: skip
    status = {}
    for r in other:
        status.setdefault(_other_status(r), []).append(r["name"])
    out["other_status"] = {k: sorted(v) for k, v in status.items()}
    return out


def _other_status(r: dict) -> str:
    """completed / failed, one line / failed, not one line / over the limit / crashed / not compiled / not run."""
    comp = r.get("compile", {})
    if comp and comp.get("status") != "ok":
        if comp.get("status") == "error":
            return "compile failed, one line" if comp["error"].get("one_line") else "compile failed, not one line"
        return f"compile {comp.get('status')}"
    fit = r.get("fit")
    if not fit:
        return "not run"
    st = fit.get("status")
    if st == "ok":
        return "completed"
    if st == "error":
        e = fit["error"]
        if not e.get("one_line"):
            return "failed, not one line"
        return "failed, one line" if "varinf/" in e.get("raised_at", "") else "failed, raised outside varinf"
    return {"timeout": "over the limit", "crashed": "crashed"}.get(st, st)


def _goal(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


def markdown(payload: dict) -> str:
    s = summarize(payload)
    recs = payload.get("records", {})
    st = payload.get("settings", {})
    lines = [
        "# posteriordb through the Stan bridge: the default `varinf.fit` against Stan's NUTS", "",
        "Written by `benchmarks/posteriordb_all.py` from `posteriordb_all.json`. Every posterior in "
        "`../shared/data/posteriordb`: each Stan program compiled by `varinf.StanModel` and fitted by "
        "`varinf.fit(model, seed=0)` (the default: method and family `auto`, diagnostics included), each stage in "
        "its own process, one thread, on one pinned core. Peer: Stan's NUTS through pystan "
        f"({st.get('nuts', '')}), on the same core. *Accurate*: {st.get('accurate', '')}, against posteriordb's "
        "reference draws, for the summary's estimates and for `res.draws()`.", "",
        *_results.provenance_lines(payload.get("meta", {})), "",
    ]  # fmt: skip
    nf = s["reference_fitted"]
    grad_ok = None if s["median_grad_ratio"] is None else s["median_grad_ratio"] <= 0.01
    wall_ok = None if s["median_wall_ratio"] is None else s["median_wall_ratio"] <= 0.1
    acc_ok = None if not s["good_khat"] else s["good_khat_accurate"] >= 0.8 * s["good_khat"]
    oth = s["other_status"]
    clean = sum(len(v) for k, v in oth.items() if k in ("completed", "failed, one line", "compile failed, one line"))
    lines += [
        "## Goals (issue 19)", "",
        "| goal | measured | |", "|---|---|---|",
        f"| no silent failure: every default fit accurate (summary and draws) or warns | {len(s['silent'])} silent "
        f"failures of {nf} fits{': ' + ', '.join(s['silent']) if s['silent'] else ''} | {_goal(not s['silent'] if nf else None)} |",
        f"| accurate on ≥ 80% of the posteriors with k̂ < {KHAT_MAX} | {s['good_khat_accurate']} of {s['good_khat']} "
        f"(summary alone: {s['good_khat_accurate_summary']}) | {_goal(acc_ok)} |",
        f"| median gradient evaluations ≤ 1/100 of NUTS's leapfrog steps | median per-posterior ratio "
        f"{_fmt(s['median_grad_ratio'], '.4f')} (to draws' leapfrogs alone: {_fmt(s['median_grad_ratio_draws'], '.4f')}); "
        f"medians {_fmt(s['median_grad_evals'], ',.0f')} vs {_fmt(s['median_leapfrog'], ',.0f')} | {_goal(grad_ok)} |",
        f"| median wall time ≤ 0.1× NUTS sampling time | median per-posterior ratio {_fmt(s['median_wall_ratio'], '.3f')}× "
        f"(CPU {_fmt(s['median_cpu_ratio'], '.3f')}×; to Stan's own elapsed time {_fmt(s['median_stan_ratio'], '.3f')}×); "
        f"medians {_fmt(s['median_fit_wall'])} s vs {_fmt(s['median_nuts_wall'])} s | {_goal(wall_ok)} |",
        f"| the {s['other_total']} without reference: complete or fail with one line (no hang, no traceback) | "
        + "; ".join(f"{k}: {len(v)}" for k, v in sorted(oth.items()))
        + f" | {_goal(clean == s['other_total'] if s['other_total'] else None)} |", "",
        f"Of the {nf} default fits with reference: {s['accurate_both']} accurate (summary {s['accurate_summary']}, "
        f"draws {s['accurate_draws']}), {s['warned']} warned. NUTS accurate by the same test on {s['nuts_accurate']} of "
        f"{s['nuts_ok']} (4,000 correlated draws).", "",
    ]  # fmt: skip
    lines += _reference_table(recs)
    lines += _other_table(recs)
    lines += _failures(recs)
    return "\n".join(lines).rstrip() + "\n"


def _reference_table(recs: dict) -> list[str]:
    rows = sorted((r for r in recs.values() if r.get("group") == "reference"), key=lambda r: r["name"])
    if not rows:
        return []
    lines = [
        "## The 41 posteriors with reference draws", "",
        "Errors: max |mean error| in reference sds / sd ratio range (✗: not accurate). Draws: `res.draws(4000)` "
        "(`q`: q's own draws, `psis`: PSIS-resampled). NUTS: sampling wall seconds (4 chains, one after another), "
        "leapfrog steps (warm-up + draws). Compile: CPU seconds (varinf's bridge / pystan's httpstan; `c`: cached, "
        "an identical program compiled before).", "",
        "| posterior | D | route | gradients | fit wall s | fit CPU s | k̂ | summary | draws | warnings | verdict | "
        "NUTS s | NUTS CPU s | leapfrog | NUTS error | compile s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in rows:
        fit, nuts = r.get("fit", {}), r.get("nuts", {})
        if fit.get("status") == "ok":
            kind = {"q": "q", "psis-resampled": "psis"}.get(fit.get("draws_kind"), fit.get("draws_kind", ""))
            cells = [_route(fit), _fmt(fit.get("grad_evals"), ",d"), _fmt(fit.get("wall_s")), _fmt(fit.get("cpu_s")),
                     _fmt(fit.get("khat")), _cmp_cell(fit.get("summary")) + (" (psis)" if fit.get("summary_corrected") else ""),
                     f"{_cmp_cell(fit.get('draws'))} ({kind})", _warn_cell(fit), verdict(r)]  # fmt: skip
        else:
            cells = ["", "", "", "", "", "", "", _error_cell(fit) if fit else "not run", verdict(r) if fit else ""]
        if nuts.get("status") == "ok":
            ncells = [_fmt(nuts["wall_s"], ".1f"), _fmt(nuts["cpu_s"], ".1f"), _fmt(nuts["leapfrog"], ",d"),
                      _cmp_cell(nuts.get("reference"))]  # fmt: skip
        else:
            ncells = ["", "", "", _error_cell(nuts) if nuts else ""]
        comp = f"{_compile_cell(r.get('compile'))} / {_compile_cell(r.get('nuts_compile'))}"
        lines.append(f"| {r['name']} | {r.get('dim', '')} | " + " | ".join([*cells, *ncells, comp]) + " |")
    return [*lines, ""]


def _compile_cell(c: dict | None) -> str:
    if not c:
        return "—"
    if c.get("status") != "ok":
        return "failed"
    return "c" if c.get("cached") else _fmt(c.get("cpu_s"), ".0f")


def _other_table(recs: dict) -> list[str]:
    rows = sorted((r for r in recs.values() if r.get("group") == "other"), key=lambda r: r["name"])
    if not rows:
        return []
    lines = [
        f"## The {len(rows)} posteriors without reference draws", "",
        f"Each default fit in its own process, limited to {FIT_CPU_LIMIT} CPU seconds ({FIT_WALL_LIMIT} s wall for a "
        "process that stops using CPU).", "",
        "| posterior | D | status | route | gradients | fit wall s | fit CPU s | k̂ | warnings / error | compile CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in rows:
        fit = r.get("fit", {})
        status = _other_status(r)
        if fit.get("status") == "ok":
            cells = [_route(fit), _fmt(fit.get("grad_evals"), ",d"), _fmt(fit.get("wall_s")), _fmt(fit.get("cpu_s")),
                     _fmt(fit.get("khat")), _warn_cell(fit)]  # fmt: skip
        else:
            stage = fit if fit else r.get("compile", {})
            cells = ["", "", _fmt(fit.get("wall_s")) if fit else "", _fmt(fit.get("cpu_s")) if fit else "", "",
                     _error_cell(stage) if stage else ""]  # fmt: skip
        lines.append(f"| {r['name']} | {r.get('dim', '')} | {status} | " + " | ".join(cells) +
                     f" | {_compile_cell(r.get('compile'))} |")  # fmt: skip
    return [*lines, ""]


def _failures(recs: dict) -> list[str]:
    """What went wrong, posterior by posterior: silent failures, fits that ran to their step limit, errors."""
    items = []
    for r in sorted(recs.values(), key=lambda r: (r.get("group") != "reference", r["name"])):
        fit = r.get("fit", {})
        if fit.get("status") == "ok":
            v = verdict(r) if r.get("group") == "reference" else ""
            if v == "SILENT FAILURE":
                bad = [k for k in ("summary", "draws") if not accurate(fit.get(k))]
                items.append(f"- **{r['name']}** (silent failure; {_route(fit)}, {fit.get('family')}): "
                             f"{' and '.join(bad)} off ({'; '.join(_cmp_cell(fit.get(k)) for k in bad)}; worst "
                             f"{fit.get(bad[0], {}).get('worst', '?')}), k̂ {_fmt(fit.get('khat'))}, no warning")  # fmt: skip
            elif not fit.get("converged"):
                items.append(f"- {r['name']} ({_route(fit)}): not converged after {fit.get('steps')} steps, "
                             f"{fit.get('grad_evals'):,} gradients, {_fmt(fit.get('cpu_s'), '.0f')} CPU s "
                             f"({fit.get('convergence')})")  # fmt: skip
        elif fit:
            items.append(
                f"- {r['name']}: fit {fit.get('status')}: {_error_cell(fit)}"
                + (f" (raised at {fit['error'].get('raised_at')})" if isinstance(fit.get("error"), dict) else "")
            )
        elif r.get("compile", {}).get("status") not in (None, "ok"):
            items.append(f"- {r['name']}: compile {r['compile'].get('status')}: {_error_cell(r['compile'])}")
    if not items:
        return []
    return ["## Failures and runaway fits", "", *items, ""]


# ================================================================================================ main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--group",
        choices=("reference", "other", "all"),
        default="all",
        help="the 41 with reference draws, the 98 without, or both (reference first)",
    )
    p.add_argument("--only", default=None, help="comma-separated posterior names")
    p.add_argument("--stages", default=None, help=f"comma-separated, of {', '.join(STAGES)} (default: all)")
    p.add_argument(
        "--redo", action="store_true", help="rerun stages already recorded (with --only: rerun one posterior)"
    )
    p.add_argument("--recompile", action="store_true", help="with --redo: also redo compile stages already recorded")
    p.add_argument("--cache", default=str(CACHE), help="compile cache for varinf and httpstan (fresh: compile times)")
    p.add_argument("--out", default=str(OUT), help="results stem (JSON and markdown)")
    p.add_argument("--report", action="store_true", help="rewrite the markdown from the JSON; run nothing")
    p.add_argument("--worker", nargs=2, metavar=("STAGE", "NAME"), help=argparse.SUPPRESS)
    p.add_argument("--with-reference", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.with_reference)
    elif args.report:
        print(_results.report(args.out, markdown), end="")
    else:
        run(args)


if __name__ == "__main__":
    main()
