"""``varinf fit <example-or-file.py>``: fit a model and print the summary and convergence information."""

from __future__ import annotations

import argparse
import importlib.util
import warnings
from pathlib import Path

__all__ = ["load_model", "register", "run_fit"]


def load_model(target: str):
    """A built-in example name, or a Python file defining ``model`` (a Model or a function returning one)."""
    from ..models import EXAMPLES, Model, load_example

    if target in EXAMPLES:
        return load_example(target)
    path = Path(target)
    if path.suffix != ".py":
        raise ValueError(f"{target!r} is neither a built-in example ({', '.join(sorted(EXAMPLES))}) nor a .py file")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {target}")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    obj = getattr(module, "model", None)
    if obj is None:
        found = [v for v in vars(module).values() if isinstance(v, Model)]
        if len(found) != 1:
            raise ValueError(f"{target}: define `model` (a varinf Model, or a function returning one)")
        obj = found[0]
    model = obj() if callable(obj) and not isinstance(obj, Model) else obj
    if not isinstance(model, Model):
        raise ValueError(f"{target}: `model` must be a varinf.Model (got {type(model).__name__})")
    return model


def run_fit(args: argparse.Namespace) -> int:
    import torch

    from .. import fit
    from ..diagnostics import DiagnosticWarning
    from ..objectives import ELBO, IWAE, Renyi

    model = load_model(args.target)
    objective = None  # method="auto" picks its own route unless an objective is asked for
    if args.objective is not None or args.gradient is not None or args.particles is not None:
        kind, gradient, particles = args.objective or "elbo", args.gradient or "reparam", args.particles or 1
        if kind == "elbo":
            objective = ELBO(num_particles=particles, gradient=gradient)
        elif kind == "iwae":
            objective = IWAE(num_particles=particles, gradient=gradient)
        else:
            objective = Renyi(alpha=args.alpha, num_particles=particles, gradient=gradient)
    lr = args.lr if args.lr == "auto" else float(args.lr)
    with warnings.catch_warnings():
        # the summary below states the diagnosis (k-hat, PSIS mean shift) in words: no duplicate Python warning
        warnings.simplefilter("ignore", DiagnosticWarning)
        result = fit(
            model,
            family=args.family,
            objective=objective,
            method=args.method,
            max_steps=args.max_steps,
            lr=lr,
            tol_rel_obj=None if args.fixed else args.tol,
            seed=args.seed,
            dtype=torch.float64 if args.float64 else None,
            progress=False if args.no_progress else None,
        )
    print(result.summary(n=args.draws))
    return 0


def register(sub) -> None:
    p = sub.add_parser("fit", help="fit a model by variational inference and print a posterior summary")
    p.add_argument("target", help="a built-in example (normal_normal, linear_regression, ...) or a .py file")
    p.add_argument("--family", default="auto", help="auto | meanfield | fullrank | lowrank | flow")
    p.add_argument("--method", default="auto", help="auto | advi | bam | pathfinder")
    p.add_argument("--objective", default=None, choices=["elbo", "iwae", "renyi"], help="(ADVI) default elbo")
    p.add_argument("--gradient", default=None, help="(ADVI) reparam | stl | score | dreg (IWAE)")
    p.add_argument("--particles", type=int, default=None, help="(ADVI) draws per step (K for IWAE/Renyi)")
    p.add_argument("--alpha", type=float, default=0.5, help="Renyi alpha")
    p.add_argument("--max-steps", type=int, default=10_000)
    p.add_argument("--lr", default="auto", help="Adam step size or 'auto'")
    p.add_argument("--tol", type=float, default=1e-3, help="relative ELBO change for convergence")
    p.add_argument("--fixed", action="store_true", help="run exactly --max-steps (no convergence check)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--draws", type=int, default=4000, help="draws for the summary")
    p.add_argument("--float64", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_fit)
