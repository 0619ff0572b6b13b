"""Same seeds, same fits? Fit a fixed set of models x methods x families with fixed seeds on two versions of
varinf and compare (issue 21: the optim redesign must keep behaviour).

Only the public API both versions share is used (``varinf.fit`` with options, ``res.summary``, the
diagnostics' headline numbers), so the same script runs on any checkout::

    # one JSON per source tree (PYTHONPATH picks the tree), seed 0, plus seed 1 on the reference as a noise scale
    PYTHONPATH=scratch/main_src/src python benchmarks/same_seed_fits.py run --seed 0 --out scratch/main_s0.json
    PYTHONPATH=scratch/main_src/src python benchmarks/same_seed_fits.py run --seed 1 --out scratch/main_s1.json
    PYTHONPATH=src                  python benchmarks/same_seed_fits.py run --seed 0 --out scratch/branch_s0.json
    python benchmarks/same_seed_fits.py compare scratch/main_s0.json scratch/branch_s0.json \
        --noise scratch/main_s1.json --out benchmarks/results/same_seed_fits

Per fit it records q's parameters (every tensor of ``res.family.state_dict()``, exactly), q's mean and sd,
the reported summary (seeded), gradient evaluations, steps, k-hat and the log evidence; for posteriordb
posteriors also the reported means' error against the reference draws (in reference sds). ``compare`` says
which fits are bit-identical (same parameters, bit for bit) and, for the others, how far apart the two
versions' q means are in q's sds, beside the same distance between seeds 0 and 1 of the reference (the Monte
Carlo noise of the fit itself). Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

# (label, model key, method, family, options); options must mean the same on both versions
EXAMPLES = ("normal_normal", "linear_regression", "eight_schools", "logistic_regression", "normal_gamma", "gp_regression",
            "plate_regression", "perdraw_joint")
POSTERIORS = ("eight_schools-eight_schools_noncentered", "kidiq-kidscore_interaction", "arK-arK",
              "gp_pois_regr-gp_pois_regr")
FITS = [
    *[(f"{m}/auto/auto", m, "auto", "auto", {}) for m in EXAMPLES],
    ("linear_regression/auto/meanfield", "linear_regression", "auto", "meanfield", {}),
    ("linear_regression/auto/lowrank", "linear_regression", "auto", "lowrank", {"rank": 2}),
    ("linear_regression/auto/flow", "linear_regression", "auto", "flow", {}),
    ("eight_schools/auto/meanfield", "eight_schools", "auto", "meanfield", {}),
    ("linear_regression/advi/meanfield", "linear_regression", "advi", "meanfield", {}),
    ("linear_regression/advi/fullrank", "linear_regression", "advi", "fullrank", {}),
    ("linear_regression/advi/lowrank", "linear_regression", "advi", "lowrank", {"rank": 2}),
    ("eight_schools/advi/meanfield", "eight_schools", "advi", "meanfield", {}),
    ("eight_schools/advi/fixed", "eight_schools", "advi", "meanfield", {"tol_rel_obj": None, "max_steps": 600, "lr": 0.05}),
    ("normal_gamma/advi/iwae", "normal_gamma", "advi", "meanfield", {"objective": "iwae"}),
    ("plate_regression/advi/minibatch", "plate_regression", "advi", "meanfield", {"batch_size": 32}),
    ("logistic_regression/auto/minibatch", "logistic_regression", "auto", "auto", {"batch_size": 50}),
    ("linear_regression/bam/fullrank", "linear_regression", "bam", "fullrank", {}),
    ("eight_schools/bam/fullrank", "eight_schools", "bam", "fullrank", {}),
    ("linear_regression/bam/lowrank", "linear_regression", "bam", "lowrank", {"rank": 2, "max_steps": 200}),
    ("eight_schools/pathfinder/fullrank", "eight_schools", "pathfinder", "fullrank", {}),
    ("linear_regression/pathfinder/fullrank", "linear_regression", "pathfinder", "fullrank", {}),
    *[(f"pdb:{p}/auto/auto", f"pdb:{p}", "auto", "auto", {}) for p in POSTERIORS],
    ("pdb:arK-arK/advi/meanfield", "pdb:arK-arK", "advi", "meanfield", {}),
    ("pdb:arK-arK/auto/meanfield", "pdb:arK-arK", "auto", "meanfield", {}),
]


def _plate_regression():
    from torch.distributions import Normal

    from varinf import Latent, Model

    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, generator=g)
    y = 1.0 - 2.0 * x + 0.5 * torch.randn(200, generator=g)
    return Model([Latent("a"), Latent("b"), Latent("sigma", support="positive")],
                 log_prior=lambda a, b, sigma: Normal(0.0, 3.0).log_prob(a) + Normal(0.0, 3.0).log_prob(b)
                 + Normal(0.0, 1.0).log_prob(sigma),
                 log_likelihood=lambda a, b, sigma, data: Normal(a + b * data["x"], sigma).log_prob(data["y"]),
                 data={"x": x, "y": y}, name="plate_regression")  # fmt: skip


def _perdraw_joint():
    from torch.distributions import Normal

    from varinf import Latent, Model

    y = torch.tensor([0.3, -1.2, 0.8, 2.1, 0.4])

    def log_joint(mu, tau):
        return Normal(0.0, 5.0).log_prob(mu) + Normal(0.0, 1.0).log_prob(tau) + Normal(mu, tau).log_prob(y).sum()

    return Model([Latent("mu"), Latent("tau", support="positive")], log_joint, vectorized=False, name="perdraw_joint")


def _model(key: str):
    if key == "plate_regression":
        return _plate_regression(), None
    if key == "perdraw_joint":
        return _perdraw_joint(), None
    if key.startswith("pdb:"):
        from varinf.posteriordb import load_posterior

        post = load_posterior(key[4:])
        return post.model(), post
    import varinf

    return varinf.load_example(key), None


def _objective(name):
    from varinf import IWAE

    return IWAE(num_particles=8) if name == "iwae" else None


def _flat(t: torch.Tensor) -> list[float]:
    return t.detach().double().cpu().flatten().tolist()


def _fit_one(label: str, key: str, method: str, family: str, options: dict, seed: int) -> dict:
    import varinf

    options = dict(options)
    objective = _objective(options.pop("objective", None))
    model, post = _model(key)
    dtype = torch.float64 if post is not None else None
    rec: dict = {"label": label}
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = varinf.fit(model, family, objective, method=method, seed=seed, progress=False, dtype=dtype, **options)
        except Exception as e:  # a failure is a result too
            rec["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:300]
            return rec
    rec["seconds"] = time.perf_counter() - t0
    rec["warnings"] = sorted({w.category.__name__ for w in caught})
    rec["state"] = {k: _flat(v) for k, v in res.family.state_dict().items()}
    with torch.no_grad():
        q = res.family()
        try:
            mean, sd = q.mean, q.stddev
        except NotImplementedError:
            try:  # q's own draws (newer versions resample PSIS-corrected fits' draws by default)
                u = res.draws_unconstrained(20_000, seed=123, corrected=False)
            except TypeError:
                u = res.draws_unconstrained(20_000, seed=123)
            mean, sd = u.mean(0), u.std(0)
    rec["q_mean"], rec["q_sd"] = _flat(mean), _flat(sd)
    rec["grad_evals"], rec["num_steps"], rec["converged"] = int(res.grad_evals), int(res.num_steps), bool(res.converged)
    rec["route"] = list(res.route)
    d = res.diagnostics
    ev = d.evidence or d.log_evidence
    rec["khat"], rec["elbo"] = float(d.khat), float(d.elbo)
    rec["log_evidence"], rec["log_evidence_method"], rec["log_evidence_reliable"] = (
        float(ev.estimate), ev.method, bool(ev.reliable))  # fmt: skip
    exact = getattr(model, "exact_log_evidence", None)
    rec["exact_log_evidence"] = float(exact()) if callable(exact) else None
    summary = res.summary(seed=0).to_dict()
    rec["summary_mean"] = {k: v["mean"] for k, v in summary.items()}
    rec["summary_sd"] = {k: v["sd"] for k, v in summary.items()}
    if post is not None:
        from varinf.posteriordb import compare_to_reference

        with torch.no_grad():
            qty = model.reference_quantities(d.draws)
        corrected = bool(getattr(res, "psis_corrected", False))
        w = d.psis.weights if corrected else None
        cmp = compare_to_reference(qty, post.reference, model.reference_names, weights=w)
        rec["ref_max_err"], rec["ref_sd_min"], rec["ref_sd_max"] = (
            cmp.max_mean_error, cmp.min_sd_ratio, cmp.max_sd_ratio)  # fmt: skip
    return rec


def run(args) -> None:
    import varinf

    torch.set_num_threads(1)
    out = {"varinf_file": varinf.__file__, "seed": args.seed, "torch": torch.__version__, "command": " ".join(sys.argv),
           "python": sys.version.split()[0], "load": os.getloadavg()[0], "fits": []}  # fmt: skip
    out["commit"] = args.commit or subprocess.run(["git", "-C", str(Path(varinf.__file__).parent), "rev-parse", "HEAD"],
                                                  capture_output=True, text=True).stdout.strip()  # fmt: skip
    for label, key, method, family, options in FITS:
        if args.only and not any(s in label for s in args.only):
            continue
        try:
            rec = _fit_one(label, key, method, family, options, args.seed)
        except Exception as e:  # set-up or reporting failed: record it, go on
            rec = {"label": label, "error": f"{type(e).__name__}: {e}".splitlines()[0][:300]}
        out["fits"].append(rec)
        status = rec.get("error") or f"{rec['seconds']:.2f} s, {rec['grad_evals']} grads"
        print(f"{label:48s} {status}", flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1))


def _distance(a: dict, b: dict) -> float:
    """Largest |mean difference| of q in q's sd (of a), over unconstrained coordinates."""
    ma, mb, sa = a["q_mean"], b["q_mean"], a["q_sd"]
    if len(ma) != len(mb):
        return math.inf
    return max(abs(x - y) / max(s, 1e-300) for x, y, s in zip(ma, mb, sa))


def _log_sd_distance(a: dict, b: dict) -> float:
    sa, sb = a["q_sd"], b["q_sd"]
    if len(sa) != len(sb):
        return math.inf
    return max(abs(math.log(max(x, 1e-300)) - math.log(max(y, 1e-300))) for x, y in zip(sa, sb))


def compare(args) -> None:
    ref = {r["label"]: r for r in json.loads(Path(args.reference).read_text())["fits"]}
    new = {r["label"]: r for r in json.loads(Path(args.candidate).read_text())["fits"]}
    noise = {r["label"]: r for r in json.loads(Path(args.noise).read_text())["fits"]} if args.noise else {}
    rows = []
    for label, a in ref.items():
        b = new.get(label)
        row = {"label": label}
        if b is None or "error" in a or "error" in b:
            row["status"] = "error: " + (b or {}).get("error", a.get("error", "missing"))[:80]
            rows.append(row)
            continue
        same = a["state"].keys() == b["state"].keys() and all(a["state"][k] == b["state"][k] for k in a["state"])
        row["status"] = "bit-identical" if same else "differs"
        row["mean_shift_sd"], row["log_sd_change"] = _distance(a, b), _log_sd_distance(a, b)
        n = noise.get(label)
        if n is not None and "error" not in n:
            row["noise_mean_shift_sd"], row["noise_log_sd_change"] = _distance(a, n), _log_sd_distance(a, n)
        row["grad_evals"] = (a["grad_evals"], b["grad_evals"])
        row["khat"] = (a["khat"], b["khat"])
        row["log_evidence"] = (a["log_evidence"], b["log_evidence"])
        if "ref_max_err" in a:
            row["ref_max_err"] = (a["ref_max_err"], b["ref_max_err"])
        row["warnings"] = (a["warnings"], b["warnings"])
        rows.append(row)
    out = Path(args.out)
    runs = {k: json.loads(Path(p).read_text()) for k, p in (("reference", args.reference), ("candidate", args.candidate),
                                                             ("noise", args.noise)) if p}  # fmt: skip
    meta = {"command": " ".join(sys.argv), "reference": args.reference, "candidate": args.candidate,
            "noise": args.noise, "runs": {k: {f: r.get(f) for f in ("commit", "torch", "python", "load", "command")}
                                          for k, r in runs.items()}}  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    out.with_suffix(".md").write_text(_markdown(meta, rows))
    print(_markdown(meta, rows))


def _fmt(x, f="{:.3g}"):
    if x is None:
        return ""
    if isinstance(x, tuple | list):
        return " → ".join(_fmt(v, f) for v in x)
    return f.format(x) if isinstance(x, float) else str(x)


def _markdown(meta: dict, rows: list[dict]) -> str:
    same = sum(r["status"] == "bit-identical" for r in rows)
    lines = [
        "# Same seeds, same fits: before and after the optim redesign (issue 21)",
        "",
        f"Written by `benchmarks/same_seed_fits.py` (`{meta['command']}`). Reference: `{meta['reference']}`; candidate: "
        f"`{meta['candidate']}`; Monte Carlo noise scale: `{meta['noise']}` (the reference with seed 1).",
        "",
        *[f"- {k}: commit `{r.get('commit')}`, torch {r.get('torch')}, Python {r.get('python')}, load {r.get('load')}, "
          f"`{r.get('command')}`" for k, r in meta["runs"].items()],
        "",
        f"{same} of {len(rows)} fits bit-identical (every parameter of q equal, bit for bit). For the others: the "
        "largest move of q's mean in q's sds and of its log-sd, beside the same distances between seeds 0 and 1 "
        "of the reference (a fit's own Monte Carlo noise).",
        "",
        "| fit | status | mean shift (q sds) | seed 0 vs 1 | log-sd change | seed 0 vs 1 | grad evals | k-hat | log evidence | ref. error (sd) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append("| " + " | ".join([
            r["label"], r["status"], _fmt(r.get("mean_shift_sd")), _fmt(r.get("noise_mean_shift_sd")),
            _fmt(r.get("log_sd_change")), _fmt(r.get("noise_log_sd_change")), _fmt(r.get("grad_evals")),
            _fmt(r.get("khat"), "{:.2f}"), _fmt(r.get("log_evidence"), "{:.3f}"), _fmt(r.get("ref_max_err"), "{:.3f}"),
        ]) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", required=True)
    r.add_argument("--only", nargs="*", default=None, help="fits whose label contains one of these")
    r.add_argument("--commit", default=None, help="the commit of the source tree (default: git rev-parse there)")
    r.set_defaults(func=run)
    c = sub.add_parser("compare")
    c.add_argument("reference")
    c.add_argument("candidate")
    c.add_argument("--noise", default=None)
    c.add_argument("--out", required=True)
    c.set_defaults(func=compare)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
