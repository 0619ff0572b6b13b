"""``varinf posteriordb list|fit NAME``: posteriordb posteriors with varinf, checked against reference draws.

::

    varinf posteriordb list --with-reference
    varinf posteriordb fit eight_schools-eight_schools_noncentered --family fullrank -o out/

``fit -o DIR`` writes ``NAME_FAMILY_trace.png``, ``NAME_FAMILY_marginals.png`` and ``NAME_FAMILY_summary.{txt,json}``.
"""

from __future__ import annotations

import argparse

from ..families import FAMILIES, FAMILY_ALIASES, canonical_family
from .options import (
    add_dtype,
    add_output,
    add_reporting,
    add_seed,
    choice,
    dtype_of,
    emit,
    integer,
    number,
    progress_of,
)
from .options import to_json as _to_json
from .paths import check_output_folder, input_folder, writing

__all__ = ["register", "run_list", "run_posteriordb_fit"]


def run_list(args: argparse.Namespace) -> int:
    from ..posteriordb import MODELS, list_posteriors, load_posterior

    if args.root is not None:
        input_folder(args.root)
    rows = []
    for name in list_posteriors(args.root, with_reference=True if args.with_reference else None):
        post = load_posterior(name, args.root)
        rows.append({"name": name, "implemented": post.model_name in MODELS, "reference": post.reference is not None})
    text = "\n".join(
        f"{r['name']:55s} {'implemented' if r['implemented'] else 'no model':12s} "
        f"{'reference draws' if r['reference'] else 'no reference'}"
        for r in rows
    )
    emit(args, text, {"posteriors": rows})
    return 0


def run_posteriordb_fit(args: argparse.Namespace) -> int:
    from ..posteriordb.evaluate import fit_posterior
    from .fit import fit_record

    if args.root is not None:
        input_folder(args.root)
    stem = f"{args.name}_{canonical_family(args.family)}"
    names = [f"{stem}_{s}" for s in ("trace.png", "marginals.png", "summary.txt", "summary.json")]
    outputs = [] if args.output is None else check_output_folder(args.output, names, inputs=[], force=args.force)
    lr = args.lr if args.lr == "auto" else float(args.lr)
    out = fit_posterior(
        args.name,
        family=canonical_family(args.family),
        root=args.root,
        plots=args.output,
        overwrite=args.force,
        max_steps=args.max_steps,
        lr=lr,
        tol_rel_obj=None if args.fixed else args.tol,
        diagnose_draws=args.draws,
        seed=args.seed,
        dtype=dtype_of(args),
        progress=progress_of(args),
    )
    text = "\n".join(out.summary_lines())
    record = fit_record(out.result, out.result.summary())  # the same table as the text
    c, w = out.comparison, out.psis_comparison
    if c is not None:
        record["reference"] = {
            "quantities": list(c.names),
            "mean_error_sd": c.mean_error,  # |mean of q - reference mean| / reference sd, per quantity
            "sd_ratio": c.sd_ratio,
            "max_mean_error_sd": c.max_mean_error,
            "psis_max_mean_error_sd": w.max_mean_error,
        }
    if outputs:
        with writing(outputs[2:], force=args.force) as (txt, js):  # the plots are written by fit_posterior
            txt.write_text(text + "\n", encoding="utf-8")
            js.write_text(_to_json(record) + "\n", encoding="utf-8")
    emit(args, text, record)
    return 0


def register(sub) -> None:
    p = sub.add_parser("posteriordb", help="fit posteriordb posteriors and compare with their reference draws")
    pdb = p.add_subparsers(dest="posteriordb_command", metavar="ACTION", required=True)
    ls = pdb.add_parser("list", help="list posteriors, whether varinf implements them and has reference draws")
    ls.add_argument("--root", default=None, help="posteriordb folder (default: $VARINF_POSTERIORDB, ../shared/data)")
    ls.add_argument("--with-reference", action="store_true", help="only posteriors with reference draws")
    add_reporting(ls)
    ls.set_defaults(func=run_list)
    f = pdb.add_parser("fit", help="fit one posterior, print diagnostics and accuracy vs the reference")
    f.add_argument("name", help="posterior name, e.g. eight_schools-eight_schools_noncentered")
    f.add_argument("--family", type=choice(*FAMILIES, *FAMILY_ALIASES), default="meanfield",
                   metavar="|".join(FAMILIES), help="variational family")  # fmt: skip
    f.add_argument("--root", default=None, help="posteriordb folder (default: $VARINF_POSTERIORDB, ../shared/data)")
    f.add_argument("--max-steps", type=integer(1), default=10_000, help="cap on optimizer steps")
    f.add_argument("--lr", type=choice("auto", also=number(0, lo_open=True)), default="auto",
                   help="Adam step size (> 0) or 'auto'")  # fmt: skip
    f.add_argument("--tol", type=number(0, lo_open=True), default=1e-3, help="relative ELBO change for convergence")
    f.add_argument("--fixed", action="store_true", help="run exactly --max-steps (no convergence check)")
    f.add_argument("--draws", type=integer(100), default=4000, help="draws of q for the diagnostics")
    add_seed(f)
    add_dtype(f, None, "the model's float64")
    add_output(f, "folder for the ELBO-trace and marginal PNGs and the summary (.txt, .json)")
    add_reporting(f)
    f.set_defaults(func=run_posteriordb_fit)
