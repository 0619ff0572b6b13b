"""Posterior speed at equal accuracy: varinf against NumPyro NUTS, NumPyro SVI and Blackjax Pathfinder (posteriordb).

For each posteriordb posterior with reference draws and a varinf model (16 now; ``posteriors()`` picks up more as
models are added, and the peers run wherever ``numpyro_posteriors.py`` has a port), every system is judged at
one accuracy: max |mean error| <= 0.1 reference sd and every sd ratio in [0.8, 1.2], over posteriordb's reference
quantities. Reported: the time until a system's estimates first meet it (compilation included, and its share
shown apart), or "never within budget".

Systems (each in a process of its own, ``posterior_speed_worker.py``; protocol in its docstring):

- varinf: ``varinf.fit(model)`` (the default fit, auto/auto) and the other method/family fits, each a single run
  that decides by itself when it is done; time = the whole call, diagnostics included; the estimates judged are
  the summary's (PSIS-corrected when the fit reports them so).
- NumPyro NUTS, 4 chains, warm-up 100 / 300 / 1000 iterations per chain; draws checked after 25, 50, 100, ...
- NumPyro SVI AutoNormal and AutoMultivariateNormal, Adam at lr 3e-3, 1e-3, 1e-2, 3e-4, 3e-2, 0.1 (the best reported);
  checked after 100, 200, 500, 1000, 2000, 5000, ... steps (4000 guide draws each time).
- Blackjax multi-path Pathfinder, L-BFGS caps 30 / 100 / 1000 iterations, checked after 1, 2, 4, ... paths
  (PSIS-weighted pool of 200 draws per path).

A peer's time is that of the first checkpoint that meets the goal, in its best setting: an oracle stop that
favours the peers (a user does not know when their estimates became accurate). A setting gets ``--budget``
CPU seconds (default 30), or less once another setting of the same system did better. CPU seconds are the
primary time (each process is single-threaded and pinned: on a shared core they do not count other jobs); wall
seconds are reported beside them. Everything float64 (JAX x64 on). Also: logistic regression (10,000 x 20 and
100,000 x 100) ms per ADVI step against NumPyro's warm jitted step, both in float32, and ``varinf fit
eight_schools`` as a whole process.

Run (about 2-4 CPU hours; resumable per posterior and system):
  OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/posterior_speed.py
  ... --posteriors arK-arK --systems varinf nuts      (a subset)      --resume      --redo      --report
Writes benchmarks/results/posterior_speed.{json,md} (after every worker). Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _results
from _results import fmt

RESULTS = _results.RESULTS
WORKER = Path(__file__).resolve().parent / "posterior_speed_worker.py"
SYSTEMS = ("varinf", "nuts", "svi-AutoNormal", "svi-AutoMultivariateNormal", "pathfinder")
PEERS = {
    "nuts": "NumPyro NUTS",
    "svi-AutoNormal": "NumPyro SVI AutoNormal",
    "svi-AutoMultivariateNormal": "NumPyro SVI AutoMVN",
    "pathfinder": "Blackjax Pathfinder",
}
DEFAULT_FIT = "auto/auto"
LOGREG = ((10_000, 20, 1000), (100_000, 100, 200))
TARGET = "max |mean error| ≤ 0.1 reference sd and every sd ratio in [0.8, 1.2]"


def posteriors() -> list[str]:
    """posteriordb posteriors with reference draws and a varinf model."""
    from varinf.posteriordb import MODELS, list_posteriors, load_posterior

    return [n for n in list_posteriors(with_reference=True) if load_posterior(n).model_name in MODELS]


# ----------------------------------------------------------------------------------------------- reading results
def _ok(c: dict) -> bool:
    return c["max_err"] <= 0.1 and 0.8 <= c["sd_min"] and c["sd_max"] <= 1.2


def reached(setting: dict) -> dict | None:
    """The first checkpoint of a setting that met the goal."""
    return next((c for c in setting["checkpoints"] if _ok(c)), None)


def best(settings: list[dict]) -> tuple[dict, dict] | None:
    """(setting, checkpoint) with the least CPU time to the goal, or None if no setting reached it."""
    hits = [(s, c) for s in settings if (c := reached(s)) is not None]
    return min(hits, key=lambda sc: sc[1]["cpu"]) if hits else None


def system_settings(run: dict, system: str) -> list[dict] | None:
    """The settings of ``system`` in one posterior's runs: a peer's sweep, or one varinf fit (``varinf auto/auto``)."""
    if system.startswith("varinf "):
        fit = system.split(" ", 1)[1]
        return [s for s in run.get("varinf", {}).get("settings", []) if s["name"] == fit] or None
    if system == "svi":  # the best-tuned NumPyro SVI: either guide, any learning rate
        both = [s for g in ("svi-AutoNormal", "svi-AutoMultivariateNormal") for s in run.get(g, {}).get("settings", [])]
        return both or None
    r = run.get(system)
    return r["settings"] if r and not r.get("error") else None


def time_to_goal(run: dict, system: str, clock: str = "cpu") -> tuple[float, str]:
    """(seconds, kind): kind 'exact', 'never' (seconds = the largest budget it was given), or 'missing'."""
    settings = system_settings(run, system)
    if not settings:
        return math.nan, "missing"
    b = best(settings)
    if b is None:
        return max(s["budget_cpu"] if clock == "cpu" else s["info"].get("wall", math.nan) for s in settings), "never"
    return b[1][clock], "exact"


def ratio(run: dict, peer: str, clock: str = "cpu") -> tuple[float, str]:
    """varinf's default fit / ``peer``, time to the goal: 'exact'; 'upper' (the peer never reached it within its
    budget, so the ratio is at most this); 'inf' (varinf's fit never reached it, the peer did); 'none'."""
    tv, kv = time_to_goal(run, f"varinf {DEFAULT_FIT}", clock)
    tp, kp = time_to_goal(run, peer, clock)
    if "missing" in (kv, kp) or (kv == kp == "never"):
        return math.nan, "none"
    if kv == "never":
        return math.inf, "inf"
    return tv / tp, "exact" if kp == "exact" else "upper"


def median_ratio(payload: dict, peer: str, clock: str = "cpu") -> dict:
    """Median over posteriors of :func:`ratio` (README figures read this): value, count, and how many are bounds."""
    rs = [ratio(run, peer, clock) for run in payload["runs"].values()]
    rs = [r for r in rs if r[1] != "none"]
    vals = sorted(v for v, _ in rs)
    return {
        "median": statistics.median(vals) if vals else math.nan,
        "n": len(vals),
        "upper": sum(k == "upper" for _, k in rs),
        "inf": sum(k == "inf" for _, k in rs),
        "slower": sum(v > 1 for v in vals),
        "excluded": len(payload["runs"]) - len(vals),
    }


def slower(payload: dict, peer: str, clock: str = "cpu") -> list[str]:
    """The posteriors where varinf's default fit took longer than ``peer`` to the goal (or never reached it)."""
    return [name for name, run in payload["runs"].items() if ratio(run, peer, clock)[0] > 1]


def reached_count(payload: dict, system: str) -> tuple[int, int]:
    """(posteriors where ``system`` met the goal, posteriors where it ran)."""
    ks = [time_to_goal(run, system)[1] for run in payload["runs"].values()]
    return sum(k == "exact" for k in ks), sum(k != "missing" for k in ks)


# ----------------------------------------------------------------------------------------------- report
def _cell(run: dict, system: str) -> str:
    t, kind = time_to_goal(run, system)
    if kind == "missing":
        r = run.get(system.split(" ")[0], {}) if not system.startswith("svi") else {}
        return "no port" if r.get("error", "").startswith("no port") else ("failed" if r.get("error") else "—")
    if kind == "never":
        return f"never ({t:.0f})"
    s, c = best(system_settings(run, system))
    share = c["compile"] / c["wall"] if c["wall"] > 0 else 0.0
    where = "" if system.startswith("varinf") else f" ({s['name']})"
    return f"{t:.2f}{where}" + (f", {100 * share:.0f}% compile" if share >= 0.005 else "")


def _ratio_line(payload: dict, peer: str, label: str) -> str:
    m, w = median_ratio(payload, peer), median_ratio(payload, peer, "wall")
    bounds = []
    if m["upper"]:
        bounds.append(f"{m['upper']} where the peer never met the goal (ratio at most the value used)")
    if m["inf"]:
        bounds.append(f"{m['inf']} where varinf's fit did not and the peer did (ratio ∞)")
    return (
        f"- varinf default fit / {label}: median **{fmt(m['median'], '.3g')}** in CPU time ({fmt(w['median'], '.3g')} "
        f"in wall time) over {m['n']} posterior(s); varinf slower on {m['slower']}"
        + (f" ({', '.join(slower(payload, peer))})" if m["slower"] else "")
        + (f"; {'; '.join(bounds)}" if bounds else "")
        + (f"; {m['excluded']} without a verdict (neither met the goal, or no port)" if m["excluded"] else "")
    )


def _verdict(c: dict, warned: str) -> str:
    """ok (the goal met); flagged (a mean off by > 0.1 sd, with a warning); SILENT FAILURE (the same without one);
    sds off (means within 0.1 sd, an sd ratio outside [0.8, 1.2]; '(warned)' if a warning was raised)."""
    if _ok(c):
        return "ok"
    if c["max_err"] > 0.1:
        return "flagged" if warned else "SILENT FAILURE"
    return "sds off" + (" (warned)" if warned else "")


def _varinf_rows(payload: dict) -> list[str]:
    out = ["| posterior | d | fit | route | grad | CPU s | wall s | err | q err | sd | k̂ | warn | goal |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, run in payload["runs"].items():
        for s in run.get("varinf", {}).get("settings", []):
            i = s["info"]
            if s["error"]:
                out.append(
                    f"| {name} | {run['varinf']['dim']} | {s['name']} | | | | | | | | | | failed — {s['error']} |"
                )
                continue
            c = s["checkpoints"][-1]
            goal = _verdict(c, i["warned"])
            err = f"{c['max_err']:.3f}" + ("*" if i["corrected"] else "")
            out.append(
                f"| {name} | {run['varinf']['dim']} | {s['name']} | {i['route']} | {i['grad_evals']} | {c['cpu']:.2f} "
                f"| {c['wall']:.2f} | {err} | {i['q_err']:.3f} | {c['sd_min']:.2f}–{c['sd_max']:.2f} | {i['khat']:.2f} "
                f"| {i['warned'] or '—'}{'' if i['converged'] else ' (not converged)'} | {goal} |"
            )
    return out


def _peer_rows(payload: dict) -> list[str]:
    out = ["| posterior | system | setting | stopped | CPU s to goal | wall s | compile | at | grad / iters | last err | "
           "last sd | charged CPU s |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, run in payload["runs"].items():
        for system in PEERS:
            r = run.get(system)
            if not r:
                continue
            if r.get("error"):
                out.append(f"| {name} | {PEERS[system]} | | {r['error']} | | | | | | | | |")
                continue
            for s in r["settings"]:
                c, last = reached(s), (s["checkpoints"][-1] if s["checkpoints"] else None)
                hit = (f"{c['cpu']:.2f} | {c['wall']:.2f} | {100 * c['compile'] / max(c['wall'], 1e-9):.0f}% | {c['work']} "
                       f"| {c['grad_evals']}") if c else "— | — | — | — | —"  # fmt: skip
                tail = f"{last['max_err']:.3f} | {last['sd_min']:.2f}–{last['sd_max']:.2f}" if last else "— | —"
                stop = s["stopped"] + (f" ({s['error']})" if s["error"] else "")
                out.append(
                    f"| {name} | {PEERS[system]} | {s['name']} | {stop} | {hit} | {tail} | {s['info'].get('cpu', 0):.1f} |"
                )
    return out


def markdown(payload: dict) -> str:
    cfg, runs = payload["settings"], payload["runs"]
    cols = [f"varinf {DEFAULT_FIT}", *PEERS]
    labels = ["varinf default fit", *PEERS.values()]
    lines = [
        "# Posterior speed at equal accuracy: varinf vs NumPyro NUTS, NumPyro SVI, Blackjax Pathfinder (posteriordb)",
        "",
        *_results.provenance_lines(payload["meta"]),
        "",
        f"**Goal** (the same for every system): {TARGET}, over posteriordb's reference quantities. **Time to the "
        f"goal**: CPU seconds of a single-threaded process pinned to one core, from after imports and a trivial "
        "warm-up of the library's runtime, through model set-up, tracing and compilation, warm-up and sampling or "
        "optimization, to the first checkpoint where the estimates meet the goal; comparing with the reference is not "
        "charged. NumPyro SVI is checked after 100, 200, 500, 1000, 2000, 5000, ... Adam steps (4000 guide draws), "
        "NUTS after 25, 50, 100, ... draws per chain (4 chains) past its warm-up, Blackjax multi-path Pathfinder after "
        "1, 2, 4, ... paths (PSIS-weighted pool); the peer's best setting is reported (learning rate, warm-up length, "
        "L-BFGS cap), which with the first-hit stop favours the peers. varinf's fits run once and stop by themselves; "
        "the estimates judged are their summary's (PSIS-corrected where the fit reports them so). Each setting may "
        f"spend {cfg['budget_cpu']:g} CPU s (less once another setting of the same system did better); *never (B)*: "
        "not within B CPU s. Float64 everywhere; one process per posterior and system; JAX's caches cleared between "
        "settings, so each pays its compilation; *compile* = JAX lowering + XLA compilation as a share of the wall time "
        "to the goal (from JAX's compile events).",
        "",
        "## Summary",
        "",
        *[
            _ratio_line(payload, p, lab)
            for p, lab in (
                ("nuts", "NumPyro NUTS"),
                ("svi", "best-tuned NumPyro SVI (either guide, best learning rate)"),
                ("pathfinder", "Blackjax multi-path Pathfinder"),
            )
        ],
        "- met the goal, posteriors: "
        + "; ".join(
            f"{lab} {reached_count(payload, c)[0]} of {reached_count(payload, c)[1]}"
            for c, lab in zip([*cols, "svi"], [*labels, "NumPyro SVI (either guide)"])
        )
        + ".",
        "",
        "## Time to the goal (CPU s; the peer's best setting; never (B) = not within B CPU s)",
        "",
        "| posterior | d | " + " | ".join(labels) + " |",
        "|---|---|" + "---|" * len(labels),
    ]
    for name, run in runs.items():
        dim = next((r["dim"] for r in run.values() if isinstance(r, dict) and "dim" in r), "?")
        lines.append(f"| {name} | {dim} | " + " | ".join(_cell(run, c) for c in cols) + " |")
    lines += ["", "## varinf fits (each method and family, as `varinf.fit` reports them)", "",
              "err = the summary's estimates (* = PSIS-corrected); q err = q's own draws; sd = min–max sd ratio; goal: "
              "ok = met; flagged = a mean off by > 0.1 sd, with a warning; SILENT FAILURE = the same without one; sds "
              "off = means within 0.1 sd but an sd ratio outside [0.8, 1.2] (a mean-field family's own bias on a "
              "correlated posterior, for one).", "",
              *_varinf_rows(payload), "", "## Peers, every setting", "",
              "at = the checkpoint (SVI steps, NUTS draws per chain, Pathfinder paths); grad / iters = gradient "
              "evaluations (NUTS: leapfrog steps incl. warm-up; SVI: steps) or L-BFGS iterations (Pathfinder); last = "
              "the last checkpoint; charged CPU s = the setting's total.", "", *_peer_rows(payload)]  # fmt: skip
    for lr in payload.get("logreg", []):
        c, w, ops = lr["ms_per_step_cpu"], lr["ms_per_step_wall"], lr["aten_ops_per_step"]
        lines += [
            "", f"## Logistic regression {lr['n']:,} × {lr['d']}: one mean-field ADVI step, both in float32", "",
            f"Precision: NumPyro {lr['dtypes']['numpyro']}, varinf {lr['dtypes']['varinf']}. Median over "
            f"{lr['repeats']} interleaved repeats of {lr['steps']} steps (NumPyro: its warm jitted `lax.scan` of "
            "`svi.update`; varinf: `varinf.step`).", "",
            "| | ms/step CPU | ms/step wall | / NumPyro (CPU) | ATen calls per step (top-level) |", "|---|---|---|---|---|",
            *(f"| {k} | {c[k]:.3f} | {w[k]:.3f} | {c[k] / c['numpyro']:.2f} | "
              + ("—" if k == "numpyro" else f"{ops['before' if 'before' in k else 'after']['all']:.0f} "
                 f"({ops['before' if 'before' in k else 'after']['top_level']:.0f})") + " |" for k in c),
        ]  # fmt: skip
    if "eight_schools_cli" in payload:
        e = payload["eight_schools_cli"]
        lines += [
            "", "## `varinf fit eight_schools` as a whole process", "",
            f"Median of {len(e['walls'])}: {e['wall_median']:.2f} s wall, {e['cpu_median']:.2f} s CPU (goal ≤ 3 s); "
            f"largest error of the summary's means {e['max_err']:.3f} reference sd (goal ≤ 0.1); a warning printed: "
            f"{e['warning_printed']}.  ", f"`{e['header']}`  ", f"`{e['khat_line']}`",
        ]  # fmt: skip
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- running
def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}  # fmt: skip


def spawn(system: str, target: str, budget: float, log: Path) -> dict:
    """Run one worker pinned to CPU 0; its result, with the load average around it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = ["taskset", "-c", "0", sys.executable, str(WORKER), system, target, "--budget", str(budget),
               "--result", str(out)]  # fmt: skip
        load, t = os.getloadavg()[0], time.perf_counter()
        with open(log, "a") as f:
            f.write(f"\n=== {system} {target}\n")
            f.flush()
            done = subprocess.run(cmd, env=_env(), stdout=f, stderr=subprocess.STDOUT)
        if done.returncode != 0 or not out.is_file():
            return {"error": f"worker exited with status {done.returncode} (see {log.name})"}
        result = json.loads(out.read_text())
    result["load"] = [load, os.getloadavg()[0]]
    result["process_wall"] = time.perf_counter() - t
    return result


def _ported(name: str) -> bool:
    from numpyro_posteriors import ported
    from varinf.posteriordb import load_posterior

    return ported(load_posterior(name))


def eight_schools_cli(repeats: int = 5) -> dict:
    """``varinf fit eight_schools`` as a whole process on one core; its summary means vs posteriordb's reference."""
    from varinf.posteriordb import load_posterior

    post = load_posterior("eight_schools-eight_schools_noncentered")
    ref = dict(zip(post.reference.names, zip(post.reference.mean, post.reference.sd)))
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "varinf", "fit", "eight_schools"]  # no bar: not a terminal
    walls, cpus, out = [], [], ""
    for _ in range(repeats):
        t, c = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), check=True)
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posteriors", nargs="*", default=None, help="default: every posterior with a varinf model")
    ap.add_argument("--systems", nargs="*", default=list(SYSTEMS), choices=SYSTEMS)
    ap.add_argument("--budget", type=float, default=30.0, help="CPU seconds per setting of a peer")
    ap.add_argument("--resume", action="store_true", help="keep the finished (posterior, system) runs of the JSON")
    ap.add_argument("--redo", action="store_true", help="with --resume: rerun --posteriors x --systems")
    ap.add_argument("--skip-logreg", action="store_true")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--report", action="store_true", help="rewrite the markdown from the JSON; run nothing")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    stem = args.out / "posterior_speed"
    if args.report:
        print(_results.report(stem, markdown))
        return 0
    names = args.posteriors or posteriors()
    old = _results.load(stem) if args.resume and stem.with_suffix(".json").is_file() else None
    meta = _results.provenance(__file__, budget_cpu=args.budget, systems=args.systems)
    if old:
        if old["settings"]["budget_cpu"] != args.budget:
            raise SystemExit(f"--budget {args.budget:g} differs from the JSON's {old['settings']['budget_cpu']:g}")
        meta = _results.with_rerun(old["meta"], meta, f"{', '.join(args.systems)} on {len(names)} posteriors"
                                   + (" (redone)" if args.redo else " (those not yet run)"))  # fmt: skip
    payload = old or {"settings": {"budget_cpu": args.budget, "target": TARGET}, "runs": {}}
    payload["meta"] = meta
    log = _results.REPO / "runs" / "posterior_speed.log"
    log.parent.mkdir(exist_ok=True)
    print(f"worker output: {log}", flush=True)
    for name in names:
        run = payload["runs"].setdefault(name, {})
        for system in args.systems:
            if system in run and not args.redo and not run[system].get("error"):
                continue
            run[system] = spawn(system, name, args.budget, log) if system == "varinf" or _ported(name) else {
                "error": "no port of this posterior in numpyro_posteriors.py"}  # fmt: skip
            _results.save(stem, payload, markdown)
            print(
                f"{name} {system}: {_cell(run, f'varinf {DEFAULT_FIT}' if system == 'varinf' else system)}", flush=True
            )
    if not args.skip_logreg:
        payload["logreg"] = [spawn("logreg", f"{n},{d},{steps}", args.budget, log) for n, d, steps in LOGREG]
        _results.save(stem, payload, markdown)
    if not args.skip_cli:
        payload["eight_schools_cli"] = eight_schools_cli()
    _results.finish(meta)
    print(_results.save(stem, payload, markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
