"""``varinf models``: the built-in models and the posteriordb posteriors varinf implements, without any data.

::

    varinf models            # names, one line each, and where the posteriordb data were found
    varinf models --json
"""

from __future__ import annotations

import argparse

from .options import add_reporting, emit

__all__ = ["EXAMPLE_DESCRIPTIONS", "builtin_posteriors", "register", "run_models"]

# one line per built-in example of varinf.models.EXAMPLES (tests/cli checks that both name the same models)
EXAMPLE_DESCRIPTIONS = {
    "normal_normal": "unknown mean of 20 normal observations, known noise (exact posterior and evidence)",
    "linear_regression": "linear regression, 3 correlated coefficients, 100 rows, known noise (exact posterior "
    "and evidence)",
    "logistic_regression": "logistic regression, 5 predictors and an intercept, 1000 synthetic rows",
    "eight_schools": "eight schools, non-centered hierarchical model (Rubin 1981), 10 latents",
    "gp_regression": "Gaussian-process regression with fixed hyperparameters, 20 whitened latent values (exact "
    "posterior and evidence)",
    "normal_gamma": "unknown mean and precision of 10 normal observations (exact evidence; a skewed posterior)",
}


def builtin_posteriors() -> list[dict]:
    """The posteriordb posteriors varinf implements and knows to have reference draws, read from the
    registry only (no data): ``{"name", "model", "implemented", "reference"}`` rows."""
    from ..posteriordb import REFERENCE_POSTERIORS

    return [{"name": n, "model": n.split("-", 1)[1], "implemented": True, "reference": True}
            for n in REFERENCE_POSTERIORS]  # fmt: skip


def _posteriordb_root() -> str | None:
    from ..posteriordb import default_root

    try:
        return str(default_root())
    except FileNotFoundError:
        return None


def run_models(args: argparse.Namespace) -> int:
    from ..models import EXAMPLES
    from ..posteriordb import MODELS

    examples = [{"name": n, "description": EXAMPLE_DESCRIPTIONS.get(n, "")} for n in sorted(EXAMPLES)]
    posteriors = builtin_posteriors()
    root = _posteriordb_root()
    where = (
        f"{root} (varinf posteriordb list shows every posterior there)"
        if root
        else ("not found (set $VARINF_POSTERIORDB, or pass --root to varinf posteriordb)")
    )
    width = max(len(e["name"]) for e in examples)
    lines = ["Built-in models (varinf fit NAME):"]
    lines += [f"  {e['name']:{width}}  {e['description']}" for e in examples]
    lines += [
        "",
        "posteriordb posteriors with reference draws (varinf posteriordb fit NAME; the data come from posteriordb):",
        *(f"  {p['name']}" for p in posteriors),
        "",
        f"posteriordb models implemented ({len(MODELS)}; each serves every posteriordb data set paired with it): "
        + ", ".join(sorted(MODELS)),
        f"posteriordb data: {where}",
        "Your own model: varinf fit my_model.py (a Python file defining `model`).",
    ]
    record = {"examples": examples, "posteriordb": {"posteriors": posteriors, "models": sorted(MODELS), "root": root}}
    emit(args, "\n".join(lines), record)
    return 0


def register(sub) -> None:
    p = sub.add_parser("models", help="list the built-in models and posteriordb posteriors (no data needed)")
    add_reporting(p)
    p.set_defaults(func=run_models)
