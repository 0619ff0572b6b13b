"""``.. varinf-results:: NAME`` writes a table from ``benchmarks/results/*.json`` at build time.

No figure on these pages is typed by hand: each table below is computed from a results file that a
benchmark script wrote, and states the file, the command and the commit that produced it. When a
benchmark is rerun, the next docs build shows the new numbers.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
RESULTS = BENCHMARKS / "results"


def load(name: str) -> dict:
    with open(RESULTS / f"{name}.json", encoding="utf-8") as f:
        return json.load(f)


def fmt(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.{digits}f}"


def table(header: list[str], rows: list[list[str]], caption: str = "") -> list[str]:
    lines = [f".. list-table:: {caption}".rstrip(), "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append("   * - " + (row[0] or " "))
        lines += [f"     - {c if c != '' else ' '}" for c in row[1:]]
    return [*lines, ""]


def source(name: str, meta: dict | None = None) -> list[str]:
    """Where a table's numbers come from: the file, and the command and commit when the JSON records them
    (``meta`` as ``benchmarks/_results.py`` writes it; results from before that convention carry ``meta["legacy"]``
    with what was recorded then)."""
    meta = meta or {}
    recorded = meta.get("legacy", {}).get("recorded", {})
    bits = [f"Source: ``benchmarks/results/{name}.json``"]
    if meta.get("command"):
        bits.append(f"written by ``{meta['command'].strip()}``")
    commit = meta.get("commit") or recorded.get("commit")
    if commit:
        bits.append(f"at commit ``{commit}``")
    machine = meta.get("cpu", {}).get("platform") or meta.get("machine") or recorded.get("machine")
    if isinstance(machine, str) and machine.startswith("{"):
        machine = json.loads(machine)
    if machine:
        bits.append(f"on {machine if isinstance(machine, str) else machine.get('platform', '')}")
    reruns = meta.get("reruns", [])
    if reruns:
        bits.append(f"partly rerun {len(reruns)} time(s), last by ``{reruns[-1].get('command', '?')}`` at commit "
                    f"``{reruns[-1].get('commit', '?')}``")
    if "legacy" in meta:
        bits.append("recorded before the results convention (not recorded: "
                    f"{', '.join(meta['legacy'].get('not_recorded', []))})")
    return [", ".join(bits) + ".", ""]


# -- posterior VI: methods (posterior_speed.json: time to equal accuracy) --------------------------------
# The benchmark's own reading of its JSON (benchmarks/posterior_speed.py: median_ratio, time_to_goal, ...), so that
# these pages and its markdown report agree.

METHOD_ORDER = ["auto/auto", "auto/meanfield", "auto/lowrank", "auto/flow", "bam/fullrank", "bam/lowrank",
                "pathfinder/fullrank", "advi/fullrank", "advi/meanfield"]
METHOD_CALL = {
    "auto/auto": '``varinf.fit(model)`` (the default)',
    "auto/meanfield": '``fit(model, "meanfield")``',
    "auto/lowrank": '``fit(model, "lowrank")``',
    "auto/flow": '``fit(model, "flow")``',
    "bam/fullrank": '``fit(model, "fullrank", method="bam")``',
    "bam/lowrank": '``fit(model, "lowrank", method="bam")``',
    "pathfinder/fullrank": '``fit(model, method="pathfinder")``',
    "advi/fullrank": '``fit(model, "fullrank", method="advi")``',
    "advi/meanfield": '``fit(model, "meanfield", method="advi")``',
}


def _median(xs):
    xs = [x for x in xs if x is not None and isinstance(x, int | float) and math.isfinite(x)]
    return statistics.median(xs) if xs else None


def _speed():
    """posterior_speed.json and the benchmark's module (its functions read the JSON)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    import posterior_speed

    return load("posterior_speed"), posterior_speed


def _varinf_fits(data: dict) -> dict[str, list[dict]]:
    """Each varinf call's settings over the posteriors (failed fits left out), in METHOD_ORDER."""
    by_fit: dict[str, list[dict]] = {}
    for run in data["runs"].values():
        for s in run.get("varinf", {}).get("settings", []):
            if not s["error"] and s["checkpoints"]:
                by_fit.setdefault(s["name"], []).append(s)
    order = [f for f in METHOD_ORDER if f in by_fit] + sorted(set(by_fit) - set(METHOD_ORDER))
    return {f: by_fit[f] for f in order}


def _fit_stats(ps, settings: list[dict]) -> dict:
    last = [s["checkpoints"][-1] for s in settings]
    verdicts = [ps._verdict(c, s["info"]["warned"]) for s, c in zip(settings, last)]
    return {
        "grad": _median([s["info"]["grad_evals"] for s in settings]),
        "cpu": _median([c["cpu"] for c in last]),
        "err": _median([c["max_err"] for c in last]),
        "met": sum(v == "ok" for v in verdicts),
        "warned": sum(bool(s["info"]["warned"]) for s in settings),
        "silent": sum(v == "SILENT FAILURE" for v in verdicts),
    }


def methods_table() -> list[str]:
    data, ps = _speed()
    n_post = len(data["runs"])
    header = ["call", "gradient evals (median)", "CPU s (median)", "error, sd (median)", f"goal met (of {n_post})",
              "warned", "silent failures"]
    rows = []
    for fit, settings in _varinf_fits(data).items():
        st = _fit_stats(ps, settings)
        rows.append([METHOD_CALL.get(fit, fit), fmt(round(st["grad"])), fmt(st["cpu"], 2), fmt(st["err"], 3),
                     str(st["met"]), str(st["warned"]), str(st["silent"])])
    return table(header, rows) + source("posterior_speed", data.get("meta"))


DECISIONS = [
    ("gradients of the log density, all rows at every step, up to a few hundred dimensions", "auto/auto"),
    ("the cheapest rough answer (a start, a screening)", "pathfinder/fullrank"),
    ("a full-rank Gaussian without Pathfinder's start", "bam/fullrank"),
    ("minibatches (millions of rows), a chosen bound (IWAE, Rényi) or gradient estimator: ADVI "
     "(``batch_size=`` selects it by itself)", "advi/fullrank"),
    ("a posterior a Gaussian cannot follow (k̂ > 0.7 with a Gaussian)", "auto/flow"),
    ("more than ~300 unconstrained dimensions (``family=\"auto\"`` switches by itself); cost O(D r²)",
     "auto/lowrank"),
    ("independent marginals are enough", "auto/meanfield"),
]


def methods_decision() -> list[str]:
    """The decision table: situations are words, every measured cell comes from the JSON."""
    data, ps = _speed()
    n_post = len(data["runs"])
    fits = _varinf_fits(data)
    if "auto/auto" not in fits:
        return ["The results file holds no default fit yet.", "", *source("posterior_speed", data.get("meta"))]
    base = _fit_stats(ps, fits["auto/auto"])["cpu"]
    rows = []
    for situation, fit in DECISIONS:
        if fit not in fits:
            continue
        st = _fit_stats(ps, fits[fit])
        rows.append([situation, METHOD_CALL[fit], fmt(round(st["grad"])),
                     f"{fmt(st['cpu'], 2)} ({st['cpu'] / base:.1f}× the default)", fmt(st["err"], 3),
                     f"{st['met']} of {n_post}", str(st["silent"])])
    header = ["your situation", "call", "gradient evals (median)", "CPU s (median)", "error, sd (median)",
              "goal met", "silent failures"]
    return table(header, rows) + source("posterior_speed", data.get("meta"))


PER_POSTERIOR_FITS = ["auto/auto", "bam/fullrank", "pathfinder/fullrank", "advi/fullrank", "advi/meanfield"]


def methods_per_posterior() -> list[str]:
    data, _ = _speed()
    fits = [f for f in PER_POSTERIOR_FITS if f in _varinf_fits(data)]
    header = ["posterior", "d", *[f.replace("/", " / ") for f in fits]]
    rows = []
    for name, run in data["runs"].items():
        by_name = {s["name"]: s for s in run.get("varinf", {}).get("settings", [])}
        cells = []
        for f in fits:
            s = by_name.get(f)
            if s is None or s["error"] or not s["checkpoints"]:
                cells.append("–")
                continue
            c = s["checkpoints"][-1]
            cells.append(f"{c['max_err']:.2f} sd, {c['cpu']:.1f} s" + (" ⚠" if s["info"]["warned"] else ""))
        rows.append([name, str(run.get("varinf", {}).get("dim", "")), *cells])
    lines = ["Each cell: largest error of a posterior mean (the summary's estimates), in reference sds, and CPU "
             "seconds; ⚠ = the fit warned (k̂, mean shift or convergence).", "", *table(header, rows)]
    return lines + source("posterior_speed", data.get("meta"))


def speed_summary() -> list[str]:
    """Median ratios of varinf's default fit to each peer, time to the goal (the benchmark's own summary lines)."""
    data, ps = _speed()
    lines = [ps._ratio_line(data, p, label) for p, label in (
        ("nuts", "NumPyro NUTS"), ("svi", "best-tuned NumPyro SVI (either guide, best learning rate)"),
        ("pathfinder", "Blackjax multi-path Pathfinder"))]
    return [*lines, "", *source("posterior_speed", data.get("meta"))]


def time_to_goal() -> list[str]:
    data, ps = _speed()
    systems = [f"varinf {ps.DEFAULT_FIT}", *ps.PEERS]
    header = ["posterior", "d", "varinf default fit", *ps.PEERS.values()]
    rows = []
    for name, run in data["runs"].items():
        dim = next((r["dim"] for r in run.values() if isinstance(r, dict) and "dim" in r), "")
        rows.append([name, str(dim), *[ps._cell(run, s) for s in systems]])
    lines = ["CPU seconds to the goal (the peer's best setting in parentheses); *never (B)*: not within B CPU s.", "",
             *table(header, rows)]
    return lines + source("posterior_speed", data.get("meta"))


def _not_in(what: str, key: str) -> list[str]:
    return [f"Not in the current results file ({what}: ``posterior_speed.json`` has no ``{key}`` yet; "
            "``python benchmarks/posterior_speed.py --resume`` measures it once every posterior is done).", ""]


def logreg_step() -> list[str]:
    data = load("posterior_speed")
    if not data.get("logreg"):
        return _not_in("the logistic-regression step", "logreg") + source("posterior_speed", data.get("meta"))
    rows = []
    for r in data["logreg"]:
        ms = r["ms_per_step_cpu"]
        fused, generic = ms["varinf fused (after)"], ms["varinf generic (before)"]
        rows.append([f"{r['n']:,} × {r['d']}", fmt(ms["numpyro"], 3), fmt(generic, 3), fmt(fused, 3),
                     fmt(fused / ms["numpyro"], 2) + "×"])
    header = ["rows × features", "NumPyro warm step (CPU ms)", "varinf autograd step (CPU ms)",
              "varinf fused step (CPU ms)", "fused / NumPyro"]
    return table(header, rows) + source("posterior_speed", data.get("meta"))


def eight_schools_cli() -> list[str]:
    data = load("posterior_speed")
    cli = data.get("eight_schools_cli")
    if not cli:
        return _not_in("the whole-process timing", "eight_schools_cli") + source("posterior_speed", data.get("meta"))
    rows = [["``varinf fit eight_schools`` (whole process)", fmt(cli["wall_median"], 2), fmt(cli["cpu_median"], 2),
             fmt(cli["max_err"], 3)]]
    return table(["command", "wall s (median)", "CPU s (median)", "largest error (reference sds)"], rows) + \
        source("posterior_speed", data.get("meta"))


# -- other benchmarks ----------------------------------------------------------------------------------


def _route(rec: dict) -> str:
    return " → ".join(rec.get("route") or []) or "–"


def _default_fits(data: dict, kind: str):
    """``(spec, record)`` of high_dim.json's default fits of one kind ("reference" or "synthetic") that ran, by key."""
    for _, rec in sorted(data["runs"].items()):
        spec = rec.get("spec", {})
        if spec.get("kind") == kind and spec.get("fit") == "default" and "error" not in rec:
            yield spec, rec


def high_dim_posteriors() -> list[str]:
    """The default fit on each high-dimensional reference (benchmarks/high_dim.py against long Stan NUTS runs)."""
    data = load("high_dim")
    rows = []
    for spec, rec in _default_fits(data, "reference"):
        r, nuts = rec["reported"], rec["nuts"]
        accurate = r["median_err"] <= 0.05 and r["max_err"] <= 0.2 and r["frac_sd_0.8_1.2"] >= 0.9
        rows.append([f"``{spec['name']}``", fmt(rec["dim"]), _route(rec), f"{fmt(r['median_err'])} / {fmt(r['max_err'])}",
                     f"{r['frac_sd_0.8_1.2']:.0%}", fmt(rec["khat"], 2),
                     ("accurate" if accurate else "off") + (", warned" if rec["warned"] else ", no warning"),
                     fmt(rec["grad_evals"]), fmt(rec["wall_s"], 1), fmt(nuts["cpu_s"], 0),
                     fmt(rec["wall_s"] / nuts["cpu_s"], 2), f"{rec['peak_rss_mb']:,.0f}"])  # fmt: skip
    header = ["posterior", "D", "route", "median / max mean error (sd)", "sd ratios in [0.8, 1.2]", "k̂", "verdict",
              "gradients", "wall s", "Stan NUTS CPU s", "wall / Stan", "peak MB"]
    return table(header, rows) + source("high_dim", data.get("meta"))


def high_dim_synthetic() -> list[str]:
    """The default fit on the exact Gaussian hierarchies as D grows."""
    data = load("high_dim")
    rows = []
    for spec, rec in _default_fits(data, "synthetic"):
        q = rec["q"]
        rows.append([str(spec["levels"]), fmt(rec["dim"]), _route(rec), fmt(q["max_err"]),
                     f"{q['sd_ratio_min']:.3f}–{q['sd_ratio_max']:.3f}", fmt(rec["grad_evals"]),
                     fmt(rec["wall_s"], 1), f"{rec['peak_rss_mb']:,.0f}"])  # fmt: skip
    rows.sort(key=lambda r: (r[0], int(r[1].replace(",", ""))))
    header = ["levels", "D", "route", "max mean error (exact sds)", "sd ratios", "gradients", "wall s", "peak MB"]
    return table(header, rows) + source("high_dim", data.get("meta"))


def big_data() -> list[str]:
    data = load("big_data")
    rows = []
    for res in data["results"].values():
        mb = res.get("varinf_minibatch", {})
        sd = mb.get("sd_ratio") or [None, None]
        rows.append([f"{res['rows']:,} × {res['features']}", fmt(mb.get("fit_cpu_s"), 1), fmt(mb.get("cpu_s"), 1),
                     str(mb.get("steps", "–")), fmt(mb.get("epochs"), 1), fmt(mb.get("mean_err"), 3),
                     f"{fmt(sd[0], 3)}–{fmt(sd[1], 3)}", fmt(mb.get("khat"), 2)])
    header = ["rows × features", "fit CPU s", "fit + diagnostics CPU s", "steps", "epochs",
              "mean error (Laplace sds)", "sd ratio vs Laplace", "k̂"]
    return table(header, rows) + source("big_data", data.get("meta"))


def evidence() -> list[str]:
    data = load("evidence_calibration")
    conj = [r for r in data["rows"] if r.get("part") == "conjugate"]
    rows = []
    for method in ("is", "bridge", "ais", "policy"):
        ms = [(r["methods"][method], r["exact"]) for r in conj if method in r.get("methods", {})]
        if not ms:
            continue
        rel = [(m, ex) for m, ex in ms if m.get("reliable")]
        covered = sum(1 for m, ex in rel if abs(m["estimate"] - ex) <= 2 * m["se"])
        within = sum(1 for m, ex in ms if abs(m["estimate"] - ex) <= 0.1)
        worst = max((abs(m["estimate"] - ex) for m, ex in rel), default=float("nan"))
        grads = max(m.get("grad_evals", 0) for m, _ in ms)
        label = {"is": "importance sampling (q, 4000 draws)", "bridge": "bridge sampling",
                 "ais": "annealed importance sampling", "policy": "the default fit's evidence (``auto``)"}[method]
        rows.append([label, f"{len(rel)} / {len(ms)}", f"{covered} / {len(rel)}", f"{within} / {len(ms)}",
                     fmt(worst, 4), fmt(grads)])
    header = ["method", "reliable", "reliable ±2 se covers exact", "within 0.1 nats", "max error when reliable (nats)",
              "max gradients"]
    return table(header, rows) + source("evidence_calibration", data.get("meta"))


def cavi_gmm() -> list[str]:
    data = load("cavi_gmm")
    rows = []
    for key, label in (("varinf_f64_same_start", "varinf float64, same k-means start"),
                       ("varinf_f32_same_start", "varinf float32, same k-means start"),
                       ("varinf_f64_own_kmeans", "varinf float64, its own k-means++")):
        rs = [r for r in data["rows"] if key in r]
        rows.append([label, fmt(_median([r[key]["speedup_vs_sklearn"] for r in rs]), 1) + "×",
                     fmt(_median([r[key]["time_s"] for r in rs]), 2), fmt(_median([r["sklearn"]["time_s"] for r in rs]), 2),
                     f"{max(abs(r[key]['elbo_minus_sklearn']) for r in rs):.1e}"])
    n, d = data["x_shape"]
    header = ["varinf", "speed-up vs scikit-learn (median)", "varinf s", "scikit-learn s", "ELBO difference per point (absolute)"]
    return [f"{n:,} points × {d} dimensions, K = 10, {len(data['rows'])} seeds.", "",
            *table(header, rows), *source("cavi_gmm", data.get("meta"))]


def cavi_lda() -> list[str]:
    data = load("cavi_lda")
    rows = []
    for method in ("batch", "online"):
        rs = [r for r in data["rows"] if r["method"] == method]
        if not rs:
            continue
        rows.append([method, str(len({r["corpus"] for r in rs})), fmt(_median([r["speedup"] for r in rs]), 2) + "×",
                     f"{fmt(min(r['speedup'] for r in rs), 2)}–{fmt(max(r['speedup'] for r in rs), 2)}×",
                     fmt(_median([r["perplexity_ratio"] for r in rs]), 3)])
    header = ["learning method", "corpora", "speed-up vs scikit-learn (median)", "range",
              "held-out perplexity ratio (median)"]
    return table(header, rows) + source("cavi_lda", data.get("meta"))


def vae_mnist() -> list[str]:
    data = load("vae_mnist")
    rows = []
    for name, model in data["models"].items():
        for p in model["points"]:
            rows.append([name.upper(), fmt(p["cpu_s"] / 3600, 2), str(p["epochs"]), f"{p['num_examples']:,}",
                         f"{p['nll']:.2f} ± {p['nll_stderr']:.2f}", fmt(-p["elbo"], 2), fmt(p["rate"], 2),
                         fmt(p["distortion"], 2)])
    header = ["model", "training CPU h", "epochs", "test images", "test NLL (nats, k = 5000)", "−ELBO", "rate",
              "distortion"]
    return table(header, rows) + source("vae_mnist", data.get("meta"))


def vae_rd() -> list[str]:
    data = load("vae_rate_distortion")
    rows = [[fmt(p["beta"], 2), fmt(p["rate"], 1), fmt(p["distortion"], 1), f"{p['nll']:.1f} ± {p['nll_stderr']:.1f}"]
            for p in data["rows"]]
    return table(["β", "rate (nats)", "distortion (nats)", "test NLL (nats)"], rows) + \
        source("vae_rate_distortion", data.get("meta"))


def bitsback() -> list[str]:
    data = load("bitsback_mnist")
    rows = [[f"**{k}**" if "varinf" in k else k, c.get("layout", ""), fmt(c["bits_per_dim"], 4)]
            for k, c in sorted(data["codecs"].items(), key=lambda kv: kv[1]["bits_per_dim"])]
    lines = [f"{data['images']:,} binarized MNIST test images; the model's −ELBO is "
             f"{data['neg_elbo_bits_per_dim']:.4f} bits/dim, net code length / −ELBO = {data['net_over_neg_elbo']:.4f}.", ""]
    return lines + table(["codec", "layout", "bits/dim"], rows) + \
        source("bitsback_mnist", data.get("meta"))


def codec_rd() -> list[str]:
    data = load("codec_rd")
    psnr, msssim = data["bd_rate_vs_jpeg_psnr_percent"], data["bd_rate_vs_jpeg_ms_ssim_percent"]
    rows = [[{"learned": "varinf (checkerboard context on the mean-scale hyperprior)"}.get(k, k), f"{psnr[k]:+.1f} %", f"{msssim.get(k, float('nan')):+.1f} %"]
            for k in psnr]
    points = data["report"]["points"]["learned"]
    span = (f"The learned codec spans {min(p['psnr'] for p in points):.1f}–{max(p['psnr'] for p in points):.1f} dB "
            f"at {min(p['bpp'] for p in points):.2f}–{max(p['bpp'] for p in points):.2f} bpp on "
            f"{data['images']} Kodak images; real / estimated bits "
            f"{data['payload_over_estimated_bits']['min']:.4f}–{data['payload_over_estimated_bits']['max']:.4f}.")
    return [span, "", *table(["codec", "BD-rate vs JPEG (PSNR)", "BD-rate vs JPEG (MS-SSIM)"], rows),
            *source("codec_rd", {"machine": data.get("machine") or data.get("environment", {}).get("platform"),
                                 "command": data.get("environment", {}).get("command", "python benchmarks/codec_rd.py"),
                                 "commit": data.get("environment", {}).get("commit")})]


def posteriordb_families() -> list[str]:
    data = load("posteriordb")
    rows = []
    for family in ("meanfield", "fullrank", "flow"):
        rs = [r for r in data["rows"] if r["family"] == family]
        if not rs:
            continue
        within = sum(1 for r in rs if r["max_err"] <= 0.1)
        # a fit warns by k-hat / mean shift (DiagnosticWarning) or by not converging (ConvergenceWarning)
        warned = [bool(r.get("warned")) or r.get("converged") is False for r in rs]
        flagged = sum(warned)
        silent = sum(1 for r, w in zip(rs, warned) if r["max_err"] > 0.1 and not w)
        rows.append([family, str(len(rs)), str(within), fmt(_median([r["max_err"] for r in rs]), 3),
                     fmt(_median([r["sd_ratio_min"] for r in rs]), 2), str(flagged), str(silent)])
    header = ["family", "posteriors", "within 0.1 sd", "error, sd (median)", "smallest sd ratio (median)",
              "warned (k̂, mean shift or not converged)", "silent failures"]
    return table(header, rows) + source("posteriordb", data.get("meta"))


def numpyro_svi() -> list[str]:
    data = load("numpyro_svi")
    rows = []
    for r in data["rows"]:
        cells = [r["posterior"], r["family"]]
        for key in ("varinf_default", "varinf", "numpyro"):
            v = r.get(key, {})
            cells.append(f"{fmt(v.get('max_err'), 3)} sd, {fmt(v.get('wall_time'), 1)} s")
        rows.append(cells)
    header = ["posterior", "family", "varinf default fit", f"varinf ADVI, {data['rows'][0]['steps']} steps",
              f"NumPyro SVI, {data['rows'][0]['steps']} steps"]
    return ["Each cell: largest error of a posterior mean (reference sds) and wall seconds (NumPyro's include "
            "compilation).", "", *table(header, rows), *source("numpyro_svi", data.get("meta"))]


def _posteriordb_all_script():
    """benchmarks/posteriordb_all.py as a module: its verdicts and goal figures are the ones its markdown shows."""
    import importlib
    import sys

    bench = str(RESULTS.parent)
    if bench not in sys.path:
        sys.path.insert(0, bench)
    return importlib.import_module("posteriordb_all")


def posteriordb_all_goals() -> list[str]:
    pa = _posteriordb_all_script()
    data = load("posteriordb_all")
    s = pa.summarize(data)
    other = "; ".join(f"{k}: {len(v)}" for k, v in sorted(s["other_status"].items()))
    rows = [
        ["no silent failure (accurate or warns; summary and ``res.draws()``)",
         f"{len(s['silent'])} silent failures of {s['reference_fitted']} fits"
         + (f" ({', '.join(s['silent'])})" if s["silent"] else "")],
        ["accurate on ≥ 80% of posteriors with k̂ < 0.7", f"{s['good_khat_accurate']} of {s['good_khat']}"],
        ["median gradient evaluations / NUTS leapfrog steps (≤ 0.01)",
         f"{fmt(s['median_grad_ratio'], 4)} (medians {fmt(s['median_grad_evals'], 0)} vs {fmt(s['median_leapfrog'], 0)})"],
        ["median fit wall time / NUTS sampling time (≤ 0.1)",
         f"{fmt(s['median_stan_ratio'], 3)} to Stan's own elapsed time; {fmt(s['median_wall_ratio'], 3)} to the wall "
         f"time of pystan's calls; CPU {fmt(s['median_cpu_ratio'], 3)}"],
        [f"the {s['other_total']} without reference: complete or fail with one line", other],
    ]  # fmt: skip
    return table(["goal (issue 19)", "measured"], rows) + source("posteriordb_all", data.get("meta"))


def _pdb_err(c: dict | None) -> str:
    if not c or "max_mean_err" not in c:
        return "–"
    return f"{fmt(c['max_mean_err'], 2)} / {fmt(c.get('sd_ratio_min'), 2)}–{fmt(c.get('sd_ratio_max'), 2)}"


def posteriordb_all_rows() -> list[str]:
    pa = _posteriordb_all_script()
    data = load("posteriordb_all")
    rows = []
    for r in sorted(data["records"].values(), key=lambda r: r["name"]):
        if r.get("group") != "reference":
            continue
        fit, nuts = r.get("fit", {}), r.get("nuts", {})
        if fit.get("status") != "ok":
            rows.append([r["name"], str(r.get("dim", "")), "–", "–", "–", "–", "–", "–", "–", pa.verdict(r)])
            continue
        stan_s = nuts.get("stan_warmup_s", 0) + nuts.get("stan_sampling_s", 0) if nuts.get("status") == "ok" else None
        rows.append([r["name"], str(r.get("dim", "")), fmt(fit.get("grad_evals")), fmt(nuts.get("leapfrog")),
                     fmt(fit.get("wall_s"), 2), fmt(stan_s, 2), fmt(fit.get("khat"), 2), _pdb_err(fit.get("summary")),
                     _pdb_err(fit.get("draws")), pa.verdict(r)])  # fmt: skip
    header = ["posterior", "D", "gradients", "NUTS leapfrogs", "fit wall s", "NUTS s (Stan's clock)", "k̂",
              "summary: error / sd ratios", "draws: error / sd ratios", "verdict"]  # fmt: skip
    return table(header, rows) + source("posteriordb_all", data.get("meta"))


TABLES = {
    "posteriordb-all-goals": posteriordb_all_goals,
    "posteriordb-all": posteriordb_all_rows,
    "posteriordb-families": posteriordb_families,
    "numpyro-svi": numpyro_svi,
    "methods": methods_table,
    "methods-decision": methods_decision,
    "methods-per-posterior": methods_per_posterior,
    "speed-summary": speed_summary,
    "time-to-goal": time_to_goal,
    "logreg-step": logreg_step,
    "eight-schools-cli": eight_schools_cli,
    "big-data": big_data,
    "high-dim-posteriors": high_dim_posteriors,
    "high-dim-synthetic": high_dim_synthetic,
    "evidence": evidence,
    "cavi-gmm": cavi_gmm,
    "cavi-lda": cavi_lda,
    "vae-mnist": vae_mnist,
    "vae-rate-distortion": vae_rd,
    "bitsback": bitsback,
    "codec-rd": codec_rd,
}


class VarinfResults(SphinxDirective):
    required_arguments = 1

    def run(self):
        name = self.arguments[0]
        if name not in TABLES:
            raise self.error(f"unknown results table {name!r}; known: {', '.join(TABLES)}")
        lines = TABLES[name]()
        node = nodes.container(classes=["varinf-results"])
        self.state.nested_parse(StringList(lines, source=f"varinf-results {name}"), self.content_offset, node)
        for path in RESULTS.glob("*.json"):
            self.env.note_dependency(str(path))
        return [node]


def setup(app):
    app.add_directive("varinf-results", VarinfResults)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
