"""The fitting methods' options as command-line flags, read from their option dataclasses (``varinf fit``,
``varinf posteriordb fit``).

Every flag defaults to "not given" and is passed to :func:`varinf.fit` only when the user sets it, so each
method keeps its own default (shown in the help, read from ``ADVIOptions``, ``BaMOptions``, ``PathfinderOptions``,
``AutoOptions`` and ``FitConfig``) and an option the chosen method does not take is refused with its name by the
same check ``varinf.fit`` makes (``--rank`` with ``--method pathfinder``: "'rank' is an option of
family='lowrank', ..."). Options that are Python callables (``optimizer``, ``callback``) have no flag.
"""

from __future__ import annotations

import argparse
import dataclasses

from .options import choice, integer, number

__all__ = ["FLAGS", "add_method_options", "method_options"]


def _default(cls_name: str, field: str):
    from ..optim import ADVIOptions, AutoOptions, BaMOptions, FitConfig, PathfinderOptions

    cls = {"advi": ADVIOptions, "auto": AutoOptions, "bam": BaMOptions, "pathfinder": PathfinderOptions,
           "config": FitConfig}[cls_name]  # fmt: skip
    f = {x.name: x for x in dataclasses.fields(cls)}[field]
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


# (flag, option name, argparse type, help, where the default lives)
FLAGS = (
    ("--window", "window", integer(2), "ADVI: steps per convergence window", "advi"),
    ("--average", "average", number(0, 1, hi_open=True), "ADVI: fraction of each phase averaged", "advi"),
    (
        "--decay",
        "decay",
        number(0, 1, lo_open=True, hi_open=True),
        "ADVI: step-size factor at each stationary phase",
        "advi",
    ),
    ("--max-decays", "max_decays", integer(0), "ADVI: at most this many step-size reductions", "advi"),
    ("--max-recoveries", "max_recoveries", integer(0), "ADVI: step-backs after non-finite bounds", "advi"),
    ("--stop", "stop", choice("elbo", "parameters"), "ADVI: stopping rule (elbo | parameters)", "advi"),
    ("--noise", "noise", number(0, lo_open=True), "ADVI --stop parameters: noise allowed in q's average (sds)", "advi"),
    ("--tol-param", "tol_param", number(0, lo_open=True), "auto/ADVI/BaM: stationarity tolerance in sds of q", "auto"),
    ("--num-draws", "num_draws", integer(2), "BaM: draws per iteration (default D+2 within [8, 64])", "bam"),
    ("--lambda0", "lambda0", number(0, lo_open=True), "BaM: step-size scale", "bam"),
    ("--num-paths", "num_paths", integer(1), "Pathfinder: L-BFGS paths", "pathfinder"),
    ("--history", "history", integer(1), "Pathfinder: L-BFGS pairs kept", "pathfinder"),
    ("--elbo-draws", "elbo_draws", integer(1), "Pathfinder: draws per ELBO estimate", "pathfinder"),
    ("--init", "init", choice("auto", "laplace", "zeros", "uniform"), "where the fit starts", "config"),
    ("--threads", "threads", integer(1), "torch threads during the fit (default: one for small data)", "config"),
    ("--device", "device", str, "torch device, e.g. cpu or cuda (default: the model's own)", "config"),
)


def add_method_options(p: argparse.ArgumentParser) -> None:
    """The flags of :data:`FLAGS`, plus ``--rank``, ``--family-option NAME=VALUE`` and ``--no-check``."""
    g = p.add_argument_group("method options (each passed only when given; a method that does not take one refuses "
                             "it)")  # fmt: skip
    for flag, name, kind, text, owner in FLAGS:
        default = _default(owner, name)
        shown = "" if owner == "config" and name in ("threads", "device") else f" (default {default})"
        g.add_argument(flag, dest=f"opt_{name}", type=kind, default=None, help=text + shown)
    g.add_argument("--rank", dest="opt_rank", type=integer(1), default=None,
                   help="low-rank family: rank (default min(5, dimension))")  # fmt: skip
    g.add_argument("--family-option", dest="family_option", type=_key_value, action="append", default=[],
                   metavar="NAME=VALUE", help="another family option, e.g. passes=2 or transforms=4 for a flow")  # fmt: skip
    g.add_argument("--no-check", dest="opt_check", action="store_const", const=False, default=None,
                   help="skip the model check before the fit")  # fmt: skip


def _key_value(text: str) -> tuple[str, object]:
    """``NAME=VALUE``: the value as an int, a float or a string."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"must be NAME=VALUE, got {text!r}")
    for cast in (int, float):
        try:
            return name, cast(value)
        except ValueError:
            pass
    return name, value


def method_options(args: argparse.Namespace) -> dict:
    """The options the user set, as :func:`varinf.fit` keywords."""
    out = {k[len("opt_") :]: v for k, v in vars(args).items() if k.startswith("opt_") and v is not None}
    out.update(dict(getattr(args, "family_option", []) or []))
    return out
