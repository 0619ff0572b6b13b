"""High-dimensional posteriors: the default fit, the low-rank methods and mean-field ADVI against exact answers
and long Stan NUTS references; time, gradient evaluations and peak memory as D grows.

Two parts, every fit in a fresh subprocess (peak memory = the process's VmHWM; CPU = its user + system time):

- synthetic: ``varinf.models.HierarchicalNormal`` (exact Gaussian posterior, one and two levels) at D = 1,000,
  10,000 and 100,000 (and 3,000 / 30,000 for the growth rate): ``varinf.fit(model)`` as a user calls it
  (diagnostics included) plus ``result.summary()``; accuracy of q's own moments and of the reported summary
  against the exact marginals; at D <= 10,000 also pBaM (``method="bam", family="lowrank"``), Pathfinder and
  mean-field ADVI. The growth exponent of time and memory is fitted on log-log axes.
- posteriors: the references of ``benchmarks/high_dim_references.py`` (posteriordb programs with D ~ 400-4,000,
  long Stan NUTS runs) through the Stan bridge (``varinf.StanModel``): the default fit, pBaM, Pathfinder, low-rank
  and mean-field ADVI. Per fit: median and max |mean error| over the parameters' scalars (in reference sds), the
  share of sd ratios in [0.8, 1.2], k-hat, warnings, time, gradient evaluations, peak memory, and the time
  against Stan's sampling time (CPU seconds of the reference run, 4 chains one after another on one core). The
  estimates are those the fit reports: PSIS-weighted diagnostic draws when ``result.psis_corrected``, else 20,000
  draws of q. This part needs the Stan bridge; without it it is skipped (rerun once the bridge is on main).

Run (one core; the synthetic part ~15 min, the posteriors ~1 h; resumable):
  OMP_NUM_THREADS=1 taskset -c 0 nice -n 5 python benchmarks/high_dim.py            (both parts)
  ... --part synthetic | posteriors    --cases NAME ...    --redo    --report-only
Writes benchmarks/results/high_dim.{json,md} (rewritten after every fit). Never imported by the package.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

import _results
from _results import git_commit

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data" / "posteriordb"
REFS = ROOT / "results" / "high_dim_references"
OUT_JSON = ROOT / "results" / "high_dim.json"
OUT_MD = ROOT / "results" / "high_dim.md"
TIMEOUT_S = 3600

SYNTHETIC_DIMS = (1_000, 3_000, 10_000, 30_000, 100_000)
PEER_MAX_DIM = 10_000  # the other methods on the synthetic model up to here
FITS = {  # name -> (method, family, options)
    "default": ("auto", "auto", {}),
    "pbam": ("bam", "lowrank", {"rank": 5}),
    "pathfinder": ("pathfinder", "lowrank", {}),
    "advi_lowrank": ("advi", "lowrank", {"rank": 5}),
    "advi_meanfield": ("advi", "meanfield", {}),
}
SYNTHETIC_FITS = ("default", "pbam", "pathfinder", "advi_meanfield")


# ---------------------------------------------------------------------------------------------- worker (one fit)
def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return math.nan


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _stats(err: np.ndarray, ratio: np.ndarray) -> dict:
    return {
        "median_err": float(np.median(err)), "max_err": float(np.max(err)), "max_err_at": int(np.argmax(err)),
        "sd_ratio_min": float(np.min(ratio)), "sd_ratio_max": float(np.max(ratio)),
        "frac_sd_0.8_1.2": float(np.mean((ratio >= 0.8) & (ratio <= 1.2))),
        "frac_sd_0.9_1.1": float(np.mean((ratio >= 0.9) & (ratio <= 1.1))),
    }


def _reported_moments(res, names: list[str], draws: int = 20_000) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per latent (flattened row-major): the means and sds the fit reports (PSIS-weighted diagnostic draws when the
    summary is PSIS-corrected, else ``draws`` fresh draws of q), streamed."""
    import torch

    from varinf.optim.draw_stream import DrawStream, streamed_moments

    qs = torch.tensor([0.5], dtype=torch.float64)
    if res.psis_corrected:
        d = res.diagnostics
        m = streamed_moments(lambda: d.chunks(), d.num_draws, qs, d.psis.weights.double())
    else:
        with torch.no_grad():
            stream = DrawStream(res.model, res.family(), draws, seed=12345)
        m = streamed_moments(lambda: stream.constrained_chunks(), draws, qs)
    return {k: (m[k][0].numpy(), m[k][1].numpy()) for k in names}


def worker(spec: dict) -> dict:
    import torch

    import varinf
    from varinf.diagnostics import DiagnosticWarning
    from varinf.optim import ConvergenceWarning

    torch.set_num_threads(1)
    out: dict = {"spec": spec}
    cpu0, t0 = _cpu(), time.perf_counter()
    if spec["kind"] == "synthetic":
        from varinf.models import HierarchicalNormal

        model = HierarchicalNormal.synthetic(spec["dim"], levels=spec["levels"], seed=0)
    else:
        folder = DATA / spec["name"]
        model = varinf.StanModel(str(folder / "model.stan"), str(folder / "data.json"))
    out["setup_s"] = time.perf_counter() - t0
    out["dim"] = int(model.dim)
    out["rss_before_fit_mb"] = _status_mb("VmRSS")
    method, family, options = FITS[spec["fit"]]
    caught = []
    cpu1, t1 = _cpu(), time.perf_counter()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = varinf.fit(model, family, method=method, seed=0, progress=False, **options)
        t_fit_diag = time.perf_counter() - t1
        ts = time.perf_counter()
        summary = res.summary()
        t_summary = time.perf_counter() - ts
        caught = [(type(x.message).__name__, str(x.message)[:300]) for x in w
                  if issubclass(x.category, (DiagnosticWarning, ConvergenceWarning))]  # fmt: skip
    out.update(
        fit_s=res.wall_time, diagnostics_s=res.diagnostics_time, fit_and_diagnostics_s=t_fit_diag,
        summary_s=t_summary, cpu_s=_cpu() - cpu1, wall_s=time.perf_counter() - t1,
        grad_evals=int(res.grad_evals), density_evals=int(getattr(res, "density_evals", 0) or 0),
        steps=int(res.num_steps), route=list(res.route or ()), converged=bool(res.converged),
        reason=res.convergence_reason[:300], khat=float(res.diagnostics.khat), verdict=res.diagnostics.verdict,
        psis_corrected=bool(res.psis_corrected), warnings=caught, warned=bool(caught),
        summary_rows=len(summary.rows), peak_rss_mb=_status_mb("VmHWM"),
    )
    names = [lat.name for lat in model.latents]
    if spec["kind"] == "synthetic":
        exact = model.exact_marginals()
        mean = np.concatenate([exact[k][0].reshape(-1).numpy() for k in names])
        sd = np.concatenate([exact[k][1].reshape(-1).numpy() for k in names])
        with torch.no_grad():
            q = res.posterior()
            qm, qs = q.mean.double().numpy(), q.stddev.double().numpy()  # exact moments of q (unconstrained = constrained)
        out["q"] = _stats(np.abs(qm - mean) / sd, qs / sd)
        rows = summary.rows
        rm = np.array([r.mean for r in rows])
        rs = np.array([r.sd for r in rows])
        out["reported"] = _stats(np.abs(rm - mean) / sd, rs / sd)
    else:
        with gzip.open(REFS / f"{spec['name']}.json.gz", "rt") as f:
            ref = json.load(f)
        pos = {n: i for i, n in enumerate(ref["summary"]["names"])}
        rmean, rsd = np.array(ref["summary"]["mean"]), np.array(ref["summary"]["sd"])
        rmcse = np.array(ref["summary"]["mcse_mean"])
        est = _reported_moments(res, [p for p in ref["stan_parameters"]])
        em, es, idx = [], [], []
        for p in ref["stan_parameters"]:
            m, s = est[p]
            shape = tuple(res.model.latents[[lat.name for lat in res.model.latents].index(p)].shape)
            for j, ix in enumerate(np.ndindex(*shape) if shape else [()]):
                key = f"{p}[{','.join(str(i + 1) for i in ix)}]" if shape else p
                em.append(m[j]), es.append(s[j]), idx.append(pos[key])
        idx = np.array(idx)
        live = rsd[idx] > 0  # scalars fixed by a constraint (a Cholesky factor's unit diagonal) have sd 0
        err = np.abs(np.array(em) - rmean[idx]) / np.where(live, rsd[idx], 1.0)
        ratio = np.array(es) / np.where(live, rsd[idx], 1.0)
        out["reported"] = _stats(err[live], ratio[live])
        out["reported"]["max_err_at"] = ref["summary"]["names"][int(idx[live][np.argmax(err[live])])]
        out["reference_mcse_over_sd_max"] = float(np.max(rmcse[idx][live] / rsd[idx][live]))
        final = ref["runs"][ref.get("final") or "pilot"]
        out["nuts"] = {"cpu_s": final["cpu_s"], "wall_s": final["wall_s"], "settings": final["settings"],
                       "leapfrog_steps_sampling": final["leapfrog_steps_sampling"]}  # fmt: skip
    out["total_cpu_s"] = _cpu() - cpu0
    return out


# ---------------------------------------------------------------------------------------------- driver
def cases(part: str) -> list[dict]:
    out = []
    if part in ("synthetic", "all"):
        for levels in (1, 2):
            for dim in SYNTHETIC_DIMS:
                for fit in SYNTHETIC_FITS:
                    if fit == "default" or dim <= PEER_MAX_DIM:
                        out.append({"kind": "synthetic", "dim": dim, "levels": levels, "fit": fit})
    if part in ("posteriors", "all"):
        for path in sorted(REFS.glob("*.json.gz")):
            with gzip.open(path, "rt") as f:
                ref = json.load(f)
            if ref.get("status") != "ok":
                continue
            for fit in FITS:
                out.append({"kind": "reference", "name": ref["name"], "fit": fit})
    return out


def key(spec: dict) -> str:
    if spec["kind"] == "synthetic":
        return f"synthetic/L{spec['levels']}/D{spec['dim']}/{spec['fit']}"
    return f"reference/{spec['name']}/{spec['fit']}"


def run_case(spec: dict) -> dict:
    cmd = [sys.executable, __file__, "--worker", json.dumps(spec)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return {"spec": spec, "error": f"timed out after {TIMEOUT_S} s"}
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"spec": spec, "error": (p.stderr or p.stdout)[-2000:], "wall_s": time.perf_counter() - t0}
    out = json.loads(lines[-1])
    out["process_max_rss_mb_children"] = r.ru_maxrss / 1024  # the largest child so far (a cross-check)
    return out


def machine() -> dict:
    import torch

    import varinf

    return {
        "commit": git_commit(), "python": platform.python_version(), "torch": torch.__version__,
        "varinf": getattr(varinf, "__version__", "?"), "machine": platform.machine(), "cpus": os.cpu_count(),
        "threads": os.environ.get("OMP_NUM_THREADS"), "affinity": sorted(os.sched_getaffinity(0)),
        "command": " ".join(sys.argv),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--part", choices=("synthetic", "posteriors", "all"), default="all")
    ap.add_argument("--cases", nargs="*", help="keys (synthetic/L1/D1000/default, reference/NAME/pbam) or prefixes")
    ap.add_argument("--redo", action="store_true", help="rerun cases already in the JSON")
    ap.add_argument("--report", "--report-only", dest="report", action="store_true",
                    help="rewrite the markdown from the JSON; run nothing")  # fmt: skip
    args = ap.parse_args()
    if args.worker:
        try:
            print(json.dumps(worker(json.loads(args.worker))))
        except Exception:
            traceback.print_exc()
            sys.exit(1)
        return
    if args.report:
        _results.report(OUT_JSON, markdown)
        return
    data = json.loads(OUT_JSON.read_text()) if OUT_JSON.exists() else {"runs": {}, "machines": []}
    run_meta = _results.provenance(__file__, part=args.part, cases=args.cases, redo=args.redo)
    old = data.get("meta")
    data["meta"] = run_meta if old is None else _results.with_rerun(old, run_meta, f"part {args.part}")
    data["machines"].append({**machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                             "load_at_start": os.getloadavg()})  # fmt: skip
    if args.part in ("posteriors", "all") and not _bridge():
        print("posteriors skipped: varinf.StanModel is not available (the Stan bridge is not merged)", flush=True)
        args.part = "synthetic" if args.part == "all" else "none"
    for spec in cases(args.part):
        k = key(spec)
        if args.cases and not any(k.startswith(c) for c in args.cases):
            continue
        if k in data["runs"] and "error" not in data["runs"][k] and not args.redo:
            continue
        print(f"{k} ... (load {os.getloadavg()[0]:.1f})", flush=True)
        rec = run_case(spec)
        rec["load_after"] = os.getloadavg()
        rec["commit"] = data["machines"][-1]["commit"]
        data["runs"][k] = rec
        print(f"  {_line(rec)}", flush=True)
        data["references_state"] = _references_state()
        _results.save(OUT_JSON, data, markdown)
    data["references_state"] = _references_state()
    _results.finish(data["meta"])
    _results.save(OUT_JSON, data, markdown)


def _bridge() -> bool:
    try:
        import varinf

        return hasattr(varinf, "StanModel")
    except ImportError:
        return False


def _line(rec: dict) -> str:
    if "error" in rec:
        return "ERROR " + rec["error"].strip().splitlines()[-1][:200]
    r = rec.get("reported", {})
    return (f"D={rec['dim']} {rec['fit_and_diagnostics_s']:.1f}s (+{rec['summary_s']:.1f}s summary) cpu {rec['cpu_s']:.1f}s "
            f"{rec['grad_evals']} grads peak {rec['peak_rss_mb']:.0f} MB khat {rec['khat']:.2f} err med {r.get('median_err', 0):.3f} "
            f"max {r.get('max_err', 0):.3f} sd[0.8,1.2] {r.get('frac_sd_0.8_1.2', 0):.2f} warned {rec['warned']}")  # fmt: skip


# ---------------------------------------------------------------------------------------------- report
def _slope(xs, ys) -> float:
    x, y = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    return float(np.polyfit(x, y, 1)[0]) if len(x) >= 2 else math.nan


def markdown(data: dict) -> str:
    """high_dim.md from the JSON alone (``references_state``: the reference folder as the run found it)."""
    runs = data["runs"]
    lines = ["# High-dimensional posteriors: time, memory and accuracy as D grows", ""]
    lines.append("Written by `benchmarks/high_dim.py` from `benchmarks/results/high_dim.json`. Every fit ran in a fresh "
                 "subprocess (one thread); peak memory is that process's VmHWM (≈ 230 MB of it is Python + torch). "
                 "Times are wall seconds on a shared, loaded 2-core machine (load averages recorded per run), CPU "
                 "seconds beside them.")  # fmt: skip
    for m in data.get("machines", [])[-3:]:
        lines.append(f"- run {m.get('started')}: commit {m['commit']}, torch {m['torch']}, Python {m['python']}, "
                     f"threads {m['threads']}, CPUs {m['affinity']}, load at start {tuple(round(v, 1) for v in m['load_at_start'])}; "
                     f"`{m['command']}`")  # fmt: skip
    lines += ["", "## Synthetic: hierarchical normal with an exact Gaussian posterior", ""]
    lines.append("`HierarchicalNormal.synthetic(D, levels)`: errors are |mean − exact| / exact sd, sd ratio = sd / exact "
                 "sd; *q* = the fitted q's own moments (exact, no Monte Carlo), *reported* = `result.summary()` "
                 "(PSIS-corrected draws when k̂ allows, else 4000 draws of q: Monte Carlo error ≈ 0.016 sd per scalar, so "
                 "the max over 10⁵ scalars is ≈ 0.07 from noise alone).")  # fmt: skip
    lines += ["", "| levels | D | fit | route | fit + diagnostics s | summary s | CPU s | grads | peak MB | k̂ | q: max err | "
              "q: sd ratio | reported: med / max err | warned | commit |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k, r in sorted(runs.items(), key=lambda kv: _order(kv[1])):
        if not k.startswith("synthetic/"):
            continue
        s = r["spec"]
        if "error" in r:
            lines.append(f"| {s['levels']} | {s['dim']} | {s['fit']} | ERROR: {r['error'].strip().splitlines()[-1][:120]} |||||||||||")
            continue
        q, rep = r["q"], r["reported"]
        lines.append(
            f"| {s['levels']} | {r['dim']:,} | {s['fit']} | {' → '.join(r['route']) or '—'} | {r['fit_and_diagnostics_s']:.1f} | "
            f"{r['summary_s']:.1f} | {r['cpu_s']:.1f} | {r['grad_evals']:,} | {r['peak_rss_mb']:.0f} | {r['khat']:.2f} | "
            f"{q['max_err']:.3f} | {q['sd_ratio_min']:.3f}–{q['sd_ratio_max']:.3f} | {rep['median_err']:.3f} / {rep['max_err']:.3f} | "
            f"{'yes' if r['warned'] else 'no'} | {r.get('commit', '?')} |"
        )
    lines += ["", "Growth with D of the default fit (least-squares slope of log time / log memory against log D; 1 = linear):", ""]
    for levels in (1, 2):
        pts = [r for k, r in runs.items() if k.startswith(f"synthetic/L{levels}/") and k.endswith("/default") and "error" not in r]
        pts.sort(key=lambda r: r["dim"])
        if len(pts) >= 2:
            D = [r["dim"] for r in pts]
            lines.append(
                f"- {levels} level(s), D = {', '.join(f'{d:,}' for d in D)}: wall time slope "
                f"{_slope(D, [r['wall_s'] for r in pts]):.2f}, CPU slope {_slope(D, [r['cpu_s'] for r in pts]):.2f}, "
                f"peak memory above the {pts[0]['rss_before_fit_mb']:.0f} MB start slope "
                f"{_slope(D, [max(r['peak_rss_mb'] - r['rss_before_fit_mb'], 1) for r in pts]):.2f}; gradient evaluations "
                + ", ".join(f"{r['grad_evals']:,}" for r in pts)
            )
    missing = [key(s) for s in cases("synthetic") if key(s) not in runs]
    if missing:
        lines += ["", f"Not run (yet) at this commit, {len(missing)} of {len(cases('synthetic'))} synthetic cases: "
                  + ", ".join(f"`{m}`" for m in missing)]  # fmt: skip
    lines += _goals_synthetic(runs)
    lines += ["", "## Posteriors with hundreds to thousands of latents (Stan NUTS references)", ""]
    ref_runs = {k: r for k, r in runs.items() if k.startswith("reference/")}
    if not ref_runs:
        lines += data.get("references_state", [])
    else:
        lines.append("Errors in reference sds over every scalar of the Stan `parameters` block (constrained; scalars fixed "
                     "by a constraint skipped); the reference's own Monte Carlo error (MCSE/sd) is up to the value in the last "
                     "column, a floor for the max error. Stan time = CPU seconds of the reference run (4 chains one after "
                     "another, warmup included).")  # fmt: skip
        lines += ["", "| posterior | D | fit | route | wall s | CPU s | grads | peak MB | k̂ | med / max err (at) | sd in [0.8,1.2] | "
                  "warned | CPU / Stan CPU | wall / Stan CPU | ref MCSE/sd |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for _, r in sorted(ref_runs.items()):
            s = r["spec"]
            if "error" in r:
                lines.append(f"| {s['name']} | | {s['fit']} | ERROR: {r['error'].strip().splitlines()[-1][:120]} ||||||||||||")
                continue
            rep, nuts = r["reported"], r["nuts"]
            lines.append(
                f"| {s['name']} | {r['dim']} | {s['fit']} | {' → '.join(r['route']) or '—'} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                f"{r['grad_evals']:,} | {r['peak_rss_mb']:.0f} | {r['khat']:.2f} | {rep['median_err']:.3f} / {rep['max_err']:.3f} "
                f"({rep['max_err_at']}) | {rep['frac_sd_0.8_1.2']:.2f} | {'yes' if r['warned'] else 'no'} | "
                f"{r['cpu_s'] / nuts['cpu_s']:.3f} | {r['wall_s'] / nuts['cpu_s']:.3f} | {r['reference_mcse_over_sd_max']:.3f} |"
            )
        lines += _goals_posteriors(ref_runs)
    lines += ["", "## Provenance", "", *_results.provenance_lines(data["meta"])]
    return "\n".join(lines) + "\n"


def _references_state() -> list[str]:
    """What the reference folder holds when no posterior has been fitted: finished, failed and pilot-only programs."""
    files = sorted(REFS.glob("*.json.gz"))
    status = {}
    for path in files:
        with gzip.open(path, "rt") as f:
            rec = json.load(f)
        status[path.name[: -len(".json.gz")]] = rec.get("status", "?")
    done = [n for n, st in status.items() if st == "ok" and not n.endswith(".pilot")]
    if done:
        return [f"References finished ({', '.join(done)}) but no posterior fitted yet: run "
                "`python benchmarks/high_dim.py --part posteriors`."]  # fmt: skip
    others = ", ".join(f"{n} ({st})" for n, st in status.items()) or "none"
    return [f"No finished reference: `benchmarks/high_dim_references.py` (long Stan NUTS runs, hours of CPU) has not "
            f"completed any program, so there is nothing to compare with. Records in `{REFS.relative_to(ROOT.parent)}`: "
            f"{others}."]  # fmt: skip


def _order(r: dict):
    s = r["spec"]
    return (s.get("levels", 0), s.get("dim", 0), list(FITS).index(s["fit"]))


def _goals_synthetic(runs: dict) -> list[str]:
    out = ["", "Goals (issue 25) for the default fit:", ""]
    for levels in (1, 2):
        r10 = runs.get(f"synthetic/L{levels}/D10000/default")
        r100 = runs.get(f"synthetic/L{levels}/D100000/default")
        if r10 and "error" not in r10:
            q = r10["q"]
            ok = q["max_err"] <= 0.05 and q["sd_ratio_min"] >= 0.9 and q["sd_ratio_max"] <= 1.1
            ok_t = r10["wall_s"] <= 60 and r10["peak_rss_mb"] <= 2048
            out.append(f"- {levels} level(s), D = {r10['dim']:,}: q within {q['max_err']:.3f} sd of the exact means and "
                       f"sd ratios {q['sd_ratio_min']:.3f}–{q['sd_ratio_max']:.3f} (goal 0.05 sd, 10%: {'met' if ok else 'MISSED'}); "
                       f"{r10['wall_s']:.1f} s wall ({r10['cpu_s']:.1f} s CPU), {r10['peak_rss_mb']:.0f} MB "
                       f"(goal 60 s, 2 GB: {'met' if ok_t else 'MISSED'})")  # fmt: skip
        if r100 and "error" not in r100:
            ok = r100["wall_s"] <= 600 and r100["peak_rss_mb"] <= 4096
            out.append(f"- {levels} level(s), D = {r100['dim']:,}: completed in {r100['wall_s']:.0f} s wall "
                       f"({r100['cpu_s']:.0f} s CPU), {r100['peak_rss_mb']:.0f} MB (goal 600 s, 4 GB: {'met' if ok else 'MISSED'}); "
                       f"q max err {r100['q']['max_err']:.3f} sd, sd ratios {r100['q']['sd_ratio_min']:.3f}–{r100['q']['sd_ratio_max']:.3f}")  # fmt: skip
    return out


def _goals_posteriors(ref_runs: dict) -> list[str]:
    out = ["", "Goals (issue 25) for the default fit on each reference: accurate (median |mean error| ≤ 0.05 sd, max ≤ "
           "0.2 sd, ≥ 90% of sd ratios in [0.8, 1.2]) or a warning; wall time ≤ 0.05 × Stan's sampling time:", ""]  # fmt: skip
    for k, r in sorted(ref_runs.items()):
        if not k.endswith("/default") or "error" in r:
            continue
        rep = r["reported"]
        accurate = rep["median_err"] <= 0.05 and rep["max_err"] <= 0.2 and rep["frac_sd_0.8_1.2"] >= 0.9
        verdict = "accurate" if accurate else ("warned" if r["warned"] else "MISSED (inaccurate, no warning)")
        ratio = r["wall_s"] / r["nuts"]["cpu_s"]
        out.append(f"- {r['spec']['name']} (D = {r['dim']}): {verdict} (median {rep['median_err']:.3f}, max {rep['max_err']:.3f}, "
                   f"{100 * rep['frac_sd_0.8_1.2']:.0f}% of sd ratios in range); time {ratio:.3f} × Stan's "
                   f"({'met' if ratio <= 0.05 else 'MISSED'})")  # fmt: skip
    return out


if __name__ == "__main__":
    main()
