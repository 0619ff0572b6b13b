"""``varinf posteriordb list|fit NAME``: posteriordb posteriors with varinf, checked against reference draws.

::

    varinf posteriordb list --with-reference
    varinf posteriordb fit eight_schools-eight_schools_noncentered --family fullrank -o out/

``fit -o DIR`` writes ``NAME_FAMILY_trace.png``, ``NAME_FAMILY_marginals.png`` and ``NAME_FAMILY_summary.{txt,json}``.
"""

from __future__ import annotations

import argparse

from .fit import add_fit_options, fit_options, fit_record
from .options import EXPLAIN_HELP, add_output, add_reporting, emit, integer, to_json
from .paths import check_output_folder, input_folder, writing

__all__ = ["register", "run_list", "run_posteriordb_fit"]


def _root(args: argparse.Namespace):
    """``--root`` as given (checked), else :func:`varinf.posteriordb.default_root`: ``$VARINF_POSTERIORDB``,
    ``$VARINF_SHARED_DATA/posteriordb``, or ``shared/data/posteriordb`` beside the varinf checkout (never a
    path relative to the current folder)."""
    from ..posteriordb import default_root

    if args.root is not None:
        return input_folder(args.root)
    try:
        return default_root()
    except FileNotFoundError as e:  # say it with the CLI's words, not the Python API's (root=)
        tried = str(e).split(";")[0]
        raise FileNotFoundError(
            f"{tried}; set $VARINF_POSTERIORDB to a posteriordb folder or pass --root DIR"
        ) from None


ROOT_HELP = ("posteriordb folder (default: $VARINF_POSTERIORDB, else $VARINF_SHARED_DATA/posteriordb, else "
             "shared/data/posteriordb beside the varinf checkout; never relative to the current folder)")  # fmt: skip


def run_list(args: argparse.Namespace) -> int:
    import sys

    from ..posteriordb import MODELS, list_posteriors, load_posterior
    from .models import builtin_posteriors

    rows, root = None, None
    if args.builtin:
        rows = builtin_posteriors()
    else:
        try:
            root = _root(args)
        except FileNotFoundError as e:
            if args.root is not None:
                raise
            print(f"{args.prog}: warning: {e}; listing the posteriors varinf implements (--builtin)", file=sys.stderr)
            rows = builtin_posteriors()
    if rows is None:
        rows = []
        for name in list_posteriors(root, with_reference=True if args.with_reference else None):
            post = load_posterior(name, root)
            rows.append({"name": name, "model": post.model_name, "implemented": post.model_name in MODELS,
                         "reference": post.reference is not None})  # fmt: skip
    text = "\n".join(
        f"{r['name']:55s} {'implemented' if r['implemented'] else 'no model':12s} "
        f"{'reference draws' if r['reference'] else 'no reference'}"
        for r in rows
    )
    emit(args, text, {"posteriors": rows, "root": None if root is None else str(root)})
    return 0


def run_posteriordb_fit(args: argparse.Namespace) -> int:
    from ..posteriordb.evaluate import fit_posterior

    root = _root(args)
    options = fit_options(args)
    stem = f"{args.name}_{options['family']}"
    names = [f"{stem}_{s}" for s in ("trace.png", "marginals.png", "summary.txt", "summary.json")]
    outputs = [] if args.output is None else check_output_folder(args.output, names, inputs=[], force=args.force)
    out = fit_posterior(
        args.name, root=root, plots=args.output, overwrite=args.force, diagnose_draws=args.draws, **options
    )
    text = "\n".join(out.summary_lines(verbose=args.explain))
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
            js.write_text(to_json(record) + "\n", encoding="utf-8")
    emit(args, text, record)
    return 0


def register(sub) -> None:
    p = sub.add_parser("posteriordb", help="fit posteriordb posteriors and compare with their reference draws")
    pdb = p.add_subparsers(dest="posteriordb_command", metavar="ACTION", required=True)
    ls = pdb.add_parser("list", help="list posteriors, whether varinf implements them and has reference draws")
    ls.add_argument("--root", default=None, help=ROOT_HELP)
    ls.add_argument("--with-reference", action="store_true", help="only posteriors with reference draws")
    ls.add_argument("--builtin", action="store_true",
                    help="list the posteriors varinf implements, from its own registry (no data read)")  # fmt: skip
    add_reporting(ls)
    ls.set_defaults(func=run_list)
    f = pdb.add_parser("fit", help="fit one posterior, print diagnostics and accuracy vs the reference")
    f.add_argument("name", help="posterior name, e.g. eight_schools-eight_schools_noncentered")
    f.add_argument("--root", default=None, help=ROOT_HELP)
    add_fit_options(f)
    f.add_argument("--draws", type=integer(100), default=4000, help="draws of q for the diagnostics")
    f.add_argument("--explain", action="store_true", help=EXPLAIN_HELP)
    add_output(f, "folder for the ELBO-trace and marginal PNGs and the summary (.txt, .json)")
    add_reporting(f)
    f.set_defaults(func=run_posteriordb_fit)
