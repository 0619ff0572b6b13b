"""varinf vs NumPyro SVI on posteriordb posteriors: same family, same step budget.

Pairs: varinf ``MeanField`` vs NumPyro ``AutoNormal``; varinf ``FullRank`` vs ``AutoMultivariateNormal``.
Two varinf runs per pair:

- *same start*: the settings NumPyro uses: unconstrained start at 0, initial scale 0.1, Adam(lr), one
  reparameterized ELBO particle, exactly ``--steps`` steps (no convergence test), float64
  (``init="zeros"``, ``tol_rel_obj=None``). varinf additionally averages the iterates of the last 25% of
  the steps (its default; NumPyro has no equivalent). This compares the two implementations of one algorithm.
- *default*: ``varinf.fit(model, family, max_steps=--steps)`` as a user calls it: Laplace initialization
  (L-BFGS mode + Hessian, family fitted in whitened coordinates), ``lr="auto"``, step-size decay and
  convergence detection within the same step cap. Its gradient evaluations include L-BFGS's and the
  step-size trials.

Accuracy is measured against the posteriordb reference draws (error of means in reference sds, sd ratio)
with 4000 draws of each q; PSIS k̂ is computed for all with varinf's diagnostics (the NumPyro models below
use the same latent names, order and unconstraining transforms as the varinf models, so the NumPyro guide is
a distribution over the same space). Time: varinf ``FitResult.wall_time`` (engine only); NumPyro ``svi.run``
loop (``svi.init`` + ``steps`` ``svi.update`` in one jitted ``fori_loop``, as ``svi.run`` does), with its
tracing/compilation timed separately from running it.

Run:  OMP_NUM_THREADS=1 nice -n 10 python benchmarks/numpyro_svi.py [--steps 5000] [--lr 0.01]   (--report: the
markdown from the JSON). Writes benchmarks/results/numpyro_svi.{json,md}. Needs the ``bench`` extra (numpyro, jax). Never imported by
the package.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.distributions import Independent, MultivariateNormal, Normal

import _results
import varinf
from varinf.diagnostics import diagnose_q
from varinf.objectives import ELBO
from varinf.posteriordb import compare_to_reference, load_posterior

RESULTS = _results.RESULTS
POSTERIORS = (  # the five posteriors first ported for this comparison (numpyro_posteriors.py has all 16)
    "eight_schools-eight_schools_noncentered",
    "arK-arK",
    "garch-garch11",
    "gp_pois_regr-gp_regr",
    "low_dim_gauss_mix-low_dim_gauss_mix",
)
PAIRS = (("meanfield", "AutoNormal"), ("fullrank", "AutoMultivariateNormal"))


@dataclass
class Side:
    max_err: float
    mean_err: float
    sd_ratio_min: float
    sd_ratio_max: float
    khat: float
    wall_time: float
    grad_evals: int
    compile_time: float = 0.0


@dataclass
class Row:
    posterior: str
    family: str
    steps: int
    lr: float
    varinf: Side  # same start and settings as NumPyro
    varinf_default: Side  # varinf.fit defaults (Laplace init, lr="auto", convergence) within the same step cap
    numpyro: Side


def _compare(model, post, z):
    with torch.no_grad():
        qty = model.reference_quantities(z)
    return compare_to_reference(qty, post.reference, model.reference_names)


def run_varinf(model, post, family, steps, lr, default: bool):
    if default:
        kw = dict(max_steps=steps)
    else:
        kw = dict(objective=ELBO(), lr=lr, max_steps=steps, tol_rel_obj=None, init="zeros", init_scale=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k-hat is recorded in the table
        res = varinf.fit(model, family=family, dtype=torch.float64, seed=0, progress=False, **kw)
    d = res.diagnostics
    c = _compare(model, post, d.draws)
    return Side(
        c.max_mean_error, c.mean_mean_error, c.min_sd_ratio, c.max_sd_ratio, d.khat, res.wall_time, res.grad_evals
    )


def _numpyro_q(guide_name, params, model):
    """The NumPyro guide as a torch distribution over varinf's unconstrained space (same layout)."""
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)
    if guide_name == "AutoMultivariateNormal":
        return MultivariateNormal(t(params["auto_loc"]), scale_tril=t(params["auto_scale_tril"]))
    names = [lat.name for lat in model.latents]
    loc = torch.cat([t(params[f"{n}_auto_loc"]).reshape(-1) for n in names])
    scale = torch.cat([t(params[f"{n}_auto_scale"]).reshape(-1) for n in names])
    return Independent(Normal(loc, scale), 1)


def run_numpyro(guide_name, model, post, steps, lr):
    import jax
    import numpyro
    from numpyro.infer import SVI, Predictive, Trace_ELBO
    from numpyro.infer.autoguide import AutoMultivariateNormal, AutoNormal
    from numpyro.infer.initialization import init_to_uniform

    from numpyro_posteriors import numpyro_model

    np_model = numpyro_model(post, model)
    guide_cls = {"AutoNormal": AutoNormal, "AutoMultivariateNormal": AutoMultivariateNormal}[guide_name]
    guide = guide_cls(np_model, init_loc_fn=init_to_uniform(radius=0.0), init_scale=0.1)
    svi = SVI(np_model, guide, numpyro.optim.Adam(lr), Trace_ELBO())
    key = jax.random.PRNGKey(0)
    jax.block_until_ready(svi.run(key, 1, progress_bar=False).params)  # warm-up: JAX start-up
    # svi.run's loop (init, then `steps` svi.update in a fori_loop), with compilation timed apart from running
    t0 = time.perf_counter()
    state = svi.init(key)
    loop = jax.jit(lambda s: jax.lax.fori_loop(0, steps, lambda i, s: svi.update(s)[0], s))
    compiled = loop.lower(state).compile()
    compile_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    final = jax.block_until_ready(compiled(state))
    wall = compile_time + time.perf_counter() - t0
    params = svi.get_params(final)
    sites = sorted({n.split("[")[0] for n in model.reference_names} | {lat.name for lat in model.latents})
    draws = Predictive(np_model, guide=guide, params=params, num_samples=4000, return_sites=sites)(
        jax.random.PRNGKey(1)
    )
    z = {k: torch.as_tensor(np.array(v), dtype=torch.float64) for k, v in draws.items()}
    c = _compare(model, post, {lat.name: z[lat.name] for lat in model.latents})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = diagnose_q(model, _numpyro_q(guide_name, params, model), num_draws=4000, warn=False)
    return Side(c.max_mean_error, c.mean_mean_error, c.min_sd_ratio, c.max_sd_ratio, d.khat, wall, steps, compile_time)


def rows_of(payload: dict) -> list[Row]:
    return [Row(**{**r, **{k: Side(**r[k]) for k in ("varinf", "varinf_default", "numpyro")}}) for r in payload["rows"]]


def markdown(payload) -> str:
    rows = rows_of(payload)
    lines = [
        "# varinf vs NumPyro SVI (same family, same step budget)",
        "",
        *_results.provenance_lines(payload["meta"]),
        "",
        "One thread each, shared CPU (times are noisy). Both in float64 (JAX x64 on).",
        "",
        "*same start* = varinf with NumPyro's settings: Adam(lr), 1 reparameterized particle, fixed steps, start at "
        "0 (unconstrained), initial scale 0.1, float64 (varinf also averages the last 25% of iterates). *default* "
        "= `varinf.fit(model, family, max_steps=steps)`: Laplace init, whitened family, lr='auto', step-size decay, "
        "convergence stop (grad evals include L-BFGS and the step-size trials). Errors = max over reference "
        "quantities of |mean_q − mean_ref| / sd_ref. NumPyro s = init + tracing/compilation + running the jitted "
        "loop of `steps` updates (compile = the first two); varinf s = `FitResult.wall_time` (eager, no compile; "
        "default includes L-BFGS + Hessian). Time ratios (< 1: varinf faster): *loop* = varinf / NumPyro's "
        "compiled loop alone; *total* = varinf / NumPyro incl. compile.",
        "",
        "| posterior | family | steps | max err: same start / default / NumPyro | k̂: same start / default / NumPyro "
        "| sd ratio: same start / NumPyro | grad evals default | s: same start / default / NumPyro (compile) "
        "| time ratio loop: same start / default | time ratio total: same start / default |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        v, d, n = r.varinf, r.varinf_default, r.numpyro
        loop = max(n.wall_time - n.compile_time, 1e-6)
        lines.append(
            f"| {r.posterior} | {r.family} | {r.steps} | {v.max_err:.3f} / {d.max_err:.3f} / {n.max_err:.3f} "
            f"| {v.khat:.2f} / {d.khat:.2f} / {n.khat:.2f} "
            f"| {v.sd_ratio_min:.2f}–{v.sd_ratio_max:.2f} / {n.sd_ratio_min:.2f}–{n.sd_ratio_max:.2f} "
            f"| {d.grad_evals} | {v.wall_time:.2f} / {d.wall_time:.2f} / {n.wall_time:.2f} ({n.compile_time:.2f}) "
            f"| {v.wall_time / loop:.1f} / {d.wall_time / loop:.1f} "
            f"| {v.wall_time / n.wall_time:.2f} / {d.wall_time / n.wall_time:.2f} |"
        )
    if rows:
        geo = lambda xs: math.exp(sum(math.log(x) for x in xs) / len(xs))
        loops = [max(r.numpyro.wall_time - r.numpyro.compile_time, 1e-6) for r in rows]
        lines += [
            "",
            f"Over {len(rows)} fits: max error ≤ 0.1 for {sum(r.varinf.max_err <= 0.1 for r in rows)} (same start), "
            f"{sum(r.varinf_default.max_err <= 0.1 for r in rows)} (default), "
            f"{sum(r.numpyro.max_err <= 0.1 for r in rows)} (NumPyro); geometric-mean time ratios varinf / NumPyro: "
            f"loop {geo([r.varinf.wall_time / t for r, t in zip(rows, loops)]):.0f}x (same start), "
            f"{geo([r.varinf_default.wall_time / t for r, t in zip(rows, loops)]):.0f}x (default); total "
            f"{geo([r.varinf.wall_time / r.numpyro.wall_time for r in rows]):.2f}x (same start), "
            f"{geo([r.varinf_default.wall_time / r.numpyro.wall_time for r in rows]):.2f}x (default).",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--posteriors", nargs="*", default=list(POSTERIORS))
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--report", action="store_true", help="rewrite the markdown from the JSON; run nothing")
    args = ap.parse_args(argv)
    stem = args.out / "numpyro_svi"
    if args.report:
        print(_results.report(stem, markdown))
        return 0
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import numpyro

    numpyro.enable_x64()
    torch.set_num_threads(1)
    meta = _results.provenance(__file__, steps=args.steps, lr=args.lr)
    rows = []
    for name in args.posteriors:
        post = load_posterior(name)
        model = post.model()
        for family, guide_name in PAIRS:
            v = run_varinf(model, post, family, args.steps, args.lr, default=False)
            vd = run_varinf(model, post, family, args.steps, args.lr, default=True)
            n = run_numpyro(guide_name, model, post, args.steps, args.lr)
            rows.append(Row(name, family, args.steps, args.lr, v, vd, n))
            print(f"{name:45s} {family:9s} varinf err {v.max_err:.3f} k {v.khat:.2f} {v.wall_time:.1f}s | "
                  f"default err {vd.max_err:.3f} k {vd.khat:.2f} {vd.wall_time:.1f}s | "
                  f"numpyro err {n.max_err:.3f} k {n.khat:.2f} {n.wall_time:.1f}s", flush=True)  # fmt: skip
            _results.save(stem, {"meta": meta, "rows": [asdict(r) for r in rows]}, markdown)
    _results.finish(meta)
    _results.save(stem, {"meta": meta, "rows": [asdict(r) for r in rows]}, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
