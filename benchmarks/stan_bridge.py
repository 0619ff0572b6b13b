"""The Stan bridge: per-call overhead, compile times, and a sample of posteriordb programs end to end.

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/stan_bridge.py overhead     # ~1 min
    python benchmarks/stan_bridge.py compile                                      # ~10 min (fresh caches)
    python benchmarks/stan_bridge.py posteriordb [--names a,b | --all] [--rerun]  # ~1 min per program

Each section writes ``benchmarks/results/stan_bridge_<section>.json``; ``benchmarks/results/stan_bridge.md`` is
rebuilt from every JSON present (``python benchmarks/stan_bridge.py report`` rebuilds it alone).

- **overhead**: S = 100 points of a 10-dimensional model, log density and gradient. The peer is the same
  batch looped inside C++ (``vf_log_density_gradient_repeat``, in the same library: no Python at all); varinf's
  three paths are the engine call (torch tensors in and out), ``model.log_density_and_score`` (what the fused
  Gaussian step calls) and ``model.log_density(u).sum().backward()`` (autograd). Median CPU time per batch over
  interleaved repeats; the goal is at most 1.2x the C++ loop.
- **compile**: wall and CPU seconds (compiler children) to build the toolchain entry (precompiled headers,
  glue) and then each program, in fresh cache folders, with and without the precompiled header.
- **posteriordb**: for each program (a sample of odd ones by default: ODEs, simplexes, Cholesky factors,
  ordered vectors, HMMs, generated quantities with RNGs, user functions), compile, construct on its data and run
  the default ``varinf.fit`` in a subprocess (10-minute cap): status, seconds, k-hat, gradient evaluations,
  the first line of any error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
PROGRAMS = REPO / "tests" / "bridges" / "programs"
POSTERIORDB = REPO.parent / "shared" / "data" / "posteriordb"

LOGISTIC = """
data { int<lower=0> N; int<lower=1> K; matrix[N, K] X; array[N] int<lower=0, upper=1> y; }
parameters { real alpha; vector[K] beta; }
model { alpha ~ normal(0, 2); beta ~ normal(0, 1); y ~ bernoulli_logit(alpha + X * beta); }
"""

SAMPLE = [
    # ODEs (SUNDIALS / RK45)
    "one_comp_mm_elim_abs-one_comp_mm_elim_abs", "hudson_lynx_hare-lotka_volterra", "sir-sir",
    "soil_carbon-soil_incubation",
    # simplexes, ordered vectors, HMMs, mixtures, LDA
    "hmm_example-hmm_example", "bball_drive_event_0-hmm_drive_0", "hmm_gaussian_simulated-hmm_gaussian",
    "iohmm_reg_simulated-iohmm_reg", "low_dim_gauss_mix-low_dim_gauss_mix", "normal_5-normal_mixture_k",
    "three_men1-ldaK2",
    # Cholesky factors, covariance matrices, GPs
    "sat-hier_2pl", "dogs-dogs_nonhierarchical", "gp_pois_regr-gp_pois_regr", "synthetic_grid_RBF_kernels-kronecker_gp",
    "state_wide_presidential_votes-hierarchical_gp", "butterfly-multi_occupancy",
    # generated quantities with RNGs, capture-recapture, survey
    "M0_data-M0_model", "Mb_data-Mb_model", "GLMM_data-GLMM1_model", "Survey_data-Survey_model",
    "ecdc0401-covid19imperial_v2", "dogs-dogs_hierarchical",
    # user-defined functions, splines, IRT, time series
    "diamonds-diamonds", "loss_curves-losscurve_sislob", "mcycle_splines-accel_splines", "rstan_downloads-prophet",
    "science_irt-grsm_latent_reg_irt", "arK-arK", "garch-garch11",
    # the classics
    "eight_schools-eight_schools_centered", "eight_schools-eight_schools_noncentered",
]  # fmt: skip


def _meta() -> dict:
    sys.path.insert(0, str(HERE))
    import torch

    import varinf
    from provenance import git_commit
    from varinf.bridges.stan.toolchain import find_toolchain

    tc = find_toolchain()
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": git_commit(),
        "varinf": varinf.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "stanc": tc.stan_version,
        "httpstan": tc.httpstan_version,
        "cxx": tc.cxx_version,
        "threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average": os.getloadavg()[0],
        "cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def _save(section: str, record: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"stan_bridge_{section}.json").write_text(json.dumps(record, indent=1) + "\n")


def _load(section: str) -> dict | None:
    p = RESULTS / f"stan_bridge_{section}.json"
    return json.loads(p.read_text()) if p.is_file() else None


# ------------------------------------------------------------------------------------------------ overhead
def _timed(fn, reps: int) -> float:
    """CPU seconds per call over ``reps`` calls."""
    t = time.process_time()
    for _ in range(reps):
        fn()
    return (time.process_time() - t) / reps


def _overhead_rows(label: str, model, u, repeats: int) -> list[dict]:
    """Median CPU time per batch of each path for one model at the points ``u`` ``(S, D)``."""
    S = u.shape[0]
    inst, engine = model.engine.inst, model.engine
    x = u.clone().requires_grad_(True)

    def autograd_path():
        x.grad = None
        model.log_density(x).sum().backward()

    variants = {
        "C++ loop (no Python)": None,
        "engine call (torch in/out)": lambda: engine.log_density_gradient(u),
        "log_density_and_score": lambda: model.log_density_and_score(u),
        "autograd: log_density + backward": autograd_path,
    }
    t1 = _timed(lambda: inst.gradient_repeat(u, 10), 5) / 10
    reps = max(5, int(0.02 / max(t1, 1e-7)))  # each measurement: ~20 ms of C++ work
    times = {k: [] for k in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            if fn is None:
                times[name].append(_timed(lambda: inst.gradient_repeat(u, reps), 1) / reps)
            else:
                times[name].append(_timed(fn, reps))
    base = statistics.median(times["C++ loop (no Python)"])
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append({"model": label, "path": name, "median_ms": med * 1e3, "min_ms": min(ts) * 1e3,
                     "ratio": med / base, "per_point_us": med / S * 1e6})  # fmt: skip
        print(f"{label:40s} {name:36s} {med * 1e3:8.3f} ms  {med / base:5.2f}x", flush=True)
    return rows


def overhead(args) -> None:
    import torch

    import varinf
    from varinf.models import EightSchools

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(100, 9, generator=g, dtype=torch.float64)
    y = (torch.rand(100, generator=g) < torch.sigmoid(X.sum(1) * 0.3)).int()
    models = {
        "eight_schools (D=10)": varinf.StanModel(PROGRAMS / "eight_schools.stan",
                                                 {"J": 8, "y": EightSchools.Y, "sigma": EightSchools.SIGMA}),
        "logistic regression 100 x 9 (D=10)": varinf.StanModel(LOGISTIC, {"N": 100, "K": 9, "X": X, "y": y},
                                                                name="logistic"),
    }  # fmt: skip
    rows = []
    for label, model in models.items():
        assert model.dim == 10
        rows += _overhead_rows(label, model, torch.randn(args.draws, model.dim, generator=g, dtype=torch.float64) * 0.5,
                               args.repeats)  # fmt: skip
    _save("overhead", {"meta": _meta(), "draws": args.draws, "repeats": args.repeats, "rows": rows})


# ------------------------------------------------------------------------------------------------ compile
def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _compile_in(cache: Path, pch: bool, programs: dict) -> list[dict]:
    """Compile ``programs`` ({label: (text, filename)}) into a fresh ``cache``; the first one also builds
    the toolchain entry, timed apart by compiling a trivial program first."""
    from varinf.bridges.stan import build, toolchain

    os.environ["VARINF_CACHE_DIR"] = str(cache)
    os.environ["VARINF_STAN_PCH"] = "1" if pch else "0"
    toolchain.find_toolchain.cache_clear()
    out = []
    trivial = "parameters { real x; } model { x ~ normal(0, 1); }\n"
    entries = [("toolchain + trivial program", trivial, "trivial.stan"), ("trivial program (toolchain cached)",
               trivial + "// again\n", "trivial.stan")]  # fmt: skip
    entries += [(k, text, name) for k, (text, name) in programs.items()]
    for label, text, name in entries:
        w, c = time.perf_counter(), _child_cpu()
        build.compile_program(text, name, progress=False)
        out.append({"program": label, "pch": pch, "wall_s": time.perf_counter() - w, "cpu_s": _child_cpu() - c})
        print(f"pch={pch!s:5} {label:45s} wall {out[-1]['wall_s']:6.1f} s  cpu {out[-1]['cpu_s']:6.1f} s", flush=True)
    return out


def compile_times(args) -> None:
    programs = {"bernoulli (test program)": ((PROGRAMS / "bernoulli.stan").read_text(), "bernoulli.stan"),
                "eight_schools (test program)": ((PROGRAMS / "eight_schools.stan").read_text(), "eight_schools.stan")}  # fmt: skip
    for name in ("diamonds-diamonds", "one_comp_mm_elim_abs-one_comp_mm_elim_abs", "sat-hier_2pl"):
        p = POSTERIORDB / name / "model.stan"
        if p.is_file():
            programs[name] = (p.read_text(), "model.stan")
    rows = []
    base = Path(tempfile.mkdtemp(prefix="varinf-compile-bench-"))
    try:
        for pch in (True, False):
            rows += _compile_in(base / f"pch{int(pch)}", pch, programs)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    _save("compile", {"meta": _meta(), "rows": rows})


# ------------------------------------------------------------------------------------------------ posteriordb
ONE = """
import json, sys, time, warnings, traceback
import torch
torch.set_num_threads(1)
import varinf
from varinf.diagnostics import DiagnosticWarning
name, root = sys.argv[1], sys.argv[2]
rec = {"name": name}
t0, c0 = time.perf_counter(), time.process_time()
import resource
child = lambda: sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])
k0 = child()
try:
    m = varinf.StanModel(f"{root}/{name}/model.stan", f"{root}/{name}/data.json", progress=False)
    rec.update(status="constructed", build_wall_s=time.perf_counter() - t0, compile_cpu_s=child() - k0, dim=m.dim,
               variables=len(m.variables))
    t1, c1 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = varinf.fit(m, progress=False, seed=0)
    rec.update(status="fitted", fit_wall_s=time.perf_counter() - t1, fit_cpu_s=time.process_time() - c1,
               grad_evals=res.grad_evals, route=list(res.route), khat=res.diagnostics.khat,
               verdict=res.diagnostics.verdict, warnings=sorted({type(w.message).__name__ for w in caught}))
    d = res.draws(100, seed=0)
    rec["draws_finite"] = bool(all(torch.isfinite(v).all() for k, v in d.items() if k in {l.name for l in m.latents}))
except Exception as e:
    rec.update(error=f"{type(e).__name__}: {' '.join(str(e).split())[:400]}")
print("RESULT " + json.dumps(rec))
"""


def posteriordb(args) -> None:
    names = SAMPLE if not args.names and not args.all else None
    if args.all:
        names = sorted(p.name for p in POSTERIORDB.iterdir() if (p / "model.stan").is_file())
    elif args.names:
        names = args.names.split(",")
    old = _load("posteriordb") or {"rows": []}
    done = {r["name"]: r for r in old["rows"]}
    rows = [done[n] for n in names if n in done and not args.rerun]
    for name in names:
        if name in done and not args.rerun:
            continue
        t0 = time.perf_counter()
        try:
            out = subprocess.run([sys.executable, "-c", ONE, name, str(POSTERIORDB)], capture_output=True, text=True,
                                 timeout=args.timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
            rec = json.loads(line[7:]) if line else {"name": name, "error": f"crashed (exit {out.returncode}): "
                                                     + " ".join(out.stderr.split())[-300:]}  # fmt: skip
        except subprocess.TimeoutExpired:
            rec = {"name": name, "error": f"over {args.timeout} s"}
        rec["total_wall_s"] = time.perf_counter() - t0
        rows.append(rec)
        print(json.dumps(rec), flush=True)
        _save("posteriordb", {"meta": _meta(), "rows": rows + [r for n, r in done.items() if n not in names]})
    _save("posteriordb", {"meta": _meta(), "rows": rows + [r for n, r in done.items() if n not in names]})


# ------------------------------------------------------------------------------------------------ report
def _num(r: dict, key: str, digits: int) -> str:
    v = r.get(key)
    return "" if v is None else f"{v:.{digits}f}"


# stan_bridge.md is written from these JSONs, one per section (tests/benchmarks checks it regenerates)
PARTS = {"overhead": "stan_bridge_overhead", "compile": "stan_bridge_compile", "posteriordb": "stan_bridge_posteriordb"}


def markdown(parts: dict) -> str:
    """stan_bridge.md from the sections' JSON payloads (``{section: payload or None}``) alone."""
    lines = ["# The Stan bridge", "", "Written by `benchmarks/stan_bridge.py` from `stan_bridge_*.json`.", ""]
    ov = parts.get("overhead")
    if ov:
        m = ov["meta"]
        lines += [
            f"## Overhead per batched call (S = {ov['draws']}, log density + gradient)", "",
            f"`{m['command']}` at {m['commit']}, {m['date']}; torch {m['torch']}, {m['stanc']}, {m['cxx']}; "
            f"OMP_NUM_THREADS={m['threads']}, CPUs {m['affinity']}, load average {m['load_average']:.1f} on "
            f"{m['cores']} cores. Median CPU time per batch over {ov['repeats']} interleaved repeats; ratio to the "
            "same batch looped inside C++ (no Python).", "",
            "| model | path | ms per batch | µs per point | × C++ |", "|---|---|---|---|---|",
        ]  # fmt: skip
        for r in ov["rows"]:
            lines.append(f"| {r['model']} | {r['path']} | {r['median_ms']:.3f} | {r['per_point_us']:.2f} | {r['ratio']:.2f} |")
        lines.append("")
    co = parts.get("compile")
    if co:
        m = co["meta"]
        lines += [
            "## Compile times", "",
            f"`{m['command']}` at {m['commit']}, {m['date']}; {m['cxx']}; load average {m['load_average']:.1f} on "
            f"{m['cores']} cores (wall times on a loaded machine; CPU = the compiler processes' user + system).", "",
            "| program | precompiled header | wall s | CPU s |", "|---|---|---|---|",
        ]  # fmt: skip
        for r in co["rows"]:
            lines.append(f"| {r['program']} | {'yes' if r['pch'] else 'no'} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} |")
        lines.append("")
    pd = parts.get("posteriordb")
    if pd:
        m = pd["meta"]
        rows = pd["rows"]
        fitted = [r for r in rows if r.get("status") == "fitted"]
        built = [r for r in rows if "status" in r]
        lines += [
            "## posteriordb programs end to end", "",
            f"`{m['command']}` at {m['commit']}, {m['date']}; load average {m['load_average']:.1f} on {m['cores']} "
            f"cores. {len(built)} of {len(rows)} compiled and constructed on their data; {len(fitted)} fitted by the "
            "default `varinf.fit` (each in its own process, one thread).", "",
            "| posterior | D | compile CPU s | fit wall s | gradients | k-hat | warnings | error |", "|---|---|---|---|---|---|---|---|",
        ]  # fmt: skip
        for r in sorted(rows, key=lambda r: r["name"]):
            lines.append(
                f"| {r['name']} | {r.get('dim', '')} | {_num(r, 'compile_cpu_s', 1)} | {_num(r, 'fit_wall_s', 2)} | "
                f"{r.get('grad_evals', '')} | {_num(r, 'khat', 2)} | {', '.join(r.get('warnings', []))} | "
                f"{r.get('error', '')} |"
            )
        lines.append("")
    return "\n".join(lines)


def report() -> None:
    (RESULTS / "stan_bridge.md").write_text(markdown({section: _load(section) for section in PARTS}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="section")
    o = sub.add_parser("overhead")
    o.add_argument("--draws", type=int, default=100)
    o.add_argument("--repeats", type=int, default=15)
    sub.add_parser("compile")
    q = sub.add_parser("posteriordb")
    q.add_argument("--names", default=None, help="comma-separated posterior names (default: a sample)")
    q.add_argument("--all", action="store_true", help="every program in ../shared/data/posteriordb")
    q.add_argument("--rerun", action="store_true", help="redo posteriors already in the JSON")
    q.add_argument("--timeout", type=int, default=600)
    sub.add_parser("report")
    args = p.parse_args()
    section = args.section or "overhead"
    if section == "overhead":
        overhead(args if args.section else p.parse_args(["overhead"]))
    elif section == "compile":
        compile_times(args)
    elif section == "posteriordb":
        posteriordb(args)
    report()


if __name__ == "__main__":
    main()
