"""``varinf posteriordb list|fit NAME``: posteriordb posteriors with varinf, checked against reference draws."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register", "run_list", "run_posteriordb_fit"]


def run_list(args: argparse.Namespace) -> int:
    from ..posteriordb import MODELS, list_posteriors, load_posterior

    for name in list_posteriors(args.root, with_reference=True if args.with_reference else None):
        post = load_posterior(name, args.root)
        implemented = "implemented" if post.model_name in MODELS else "no model"
        reference = "reference draws" if post.reference is not None else "no reference"
        print(f"{name:55s} {implemented:12s} {reference}")
    return 0


def run_posteriordb_fit(args: argparse.Namespace) -> int:
    import torch

    from ..posteriordb.evaluate import fit_posterior

    lr = args.lr if args.lr == "auto" else float(args.lr)
    try:
        out = fit_posterior(
            args.name,
            family=args.family,
            root=args.root,
            plots=args.plots,
            overwrite=args.force,
            max_steps=args.max_steps,
            lr=lr,
            tol_rel_obj=None if args.fixed else args.tol,
            diagnose_draws=args.draws,
            dtype=torch.float32 if args.float32 else None,
            progress=False if args.no_progress else None,
        )
    except FileExistsError as e:  # main() reports ValueError & co.; an existing plot is the user's file
        print(f"varinf posteriordb fit: error: {e}", file=sys.stderr)
        return 1
    print("\n".join(out.summary_lines()))
    return 0


def register(sub) -> None:
    p = sub.add_parser("posteriordb", help="fit posteriordb posteriors and compare with their reference draws")
    pdb = p.add_subparsers(dest="posteriordb_command", metavar="ACTION", required=True)
    ls = pdb.add_parser("list", help="list posteriors, whether varinf implements them and has reference draws")
    ls.add_argument("--root", default=None, help="posteriordb folder (default: $VARINF_POSTERIORDB, ../shared/data)")
    ls.add_argument("--with-reference", action="store_true", help="only posteriors with reference draws")
    ls.set_defaults(func=run_list)
    f = pdb.add_parser("fit", help="fit one posterior, print diagnostics and accuracy vs the reference")
    f.add_argument("name", help="posterior name, e.g. eight_schools-eight_schools_noncentered")
    f.add_argument("--family", default="meanfield", help="meanfield | fullrank | lowrank | flow")
    f.add_argument("--root", default=None)
    f.add_argument("--max-steps", type=int, default=10_000)
    f.add_argument("--lr", default="auto")
    f.add_argument("--tol", type=float, default=1e-3)
    f.add_argument("--fixed", action="store_true", help="run exactly --max-steps (no convergence check)")
    f.add_argument("--draws", type=int, default=4000, help="draws of q for the diagnostics")
    f.add_argument("--plots", default=None, help="folder for ELBO-trace and marginal PNGs")
    f.add_argument("--force", action="store_true", help="overwrite existing plot files")
    f.add_argument("--float32", action="store_true", help="run in float32 (default: the model's float64)")
    f.add_argument("--no-progress", action="store_true")
    f.set_defaults(func=run_posteriordb_fit)
