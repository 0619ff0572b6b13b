"""The options every subcommand shares, and argument types that refuse bad values in one line.

The convention (``tests/cli/test_cli_convention.py`` walks every subcommand's ``--help`` and checks it):

=========================  ===========================================================================
``-o/--output``            every file or folder a command writes (nothing else writes files)
``--force``                beside ``-o``: replace existing outputs (never an input, never a special file)
``--seed``                 every command that draws random numbers
``--dtype float32|64``     every command whose arithmetic precision can be chosen
``--quiet``                no progress bar and no report on stdout (errors and warnings still go to stderr)
``--json``                 the results as one JSON object on stdout instead of the report
``--debug``                show the full traceback of an error (also ``VARINF_DEBUG=1``)
=========================  ===========================================================================

Argument types (:func:`integer`, :func:`number`) reject a bad value while parsing, so the user sees
``varinf fit: error: argument --max-steps: must be an integer >= 1, got '-1'`` before anything runs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any

__all__ = [
    "DTYPES",
    "EXPLAIN_HELP",
    "add_dtype",
    "add_output",
    "add_reporting",
    "add_seed",
    "choice",
    "dtype_of",
    "emit",
    "integer",
    "jsonable",
    "number",
    "path",
    "progress_of",
]

DTYPES = ("float32", "float64")
EXPLAIN_HELP = "the long summary: stopping rule, route, k-hat thresholds and sources, the evidence's full account"


# ---------------------------------------------------------------------------------------- argument types
def integer(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``[lo, hi]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be an integer {_bounds(lo, hi)}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def number(
    lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False
) -> Callable[[str], float]:
    """An argparse ``type``: a finite number in ``[lo, hi]`` (``lo_open``/``hi_open`` exclude the ends)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value)
        if ok and lo is not None:
            ok = value > lo if lo_open else value >= lo
        if ok and hi is not None:
            ok = value < hi if hi_open else value <= hi
        if not ok:
            raise argparse.ArgumentTypeError(f"must be a number {_bounds(lo, hi, lo_open, hi_open)}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def choice(*allowed: str, also: Callable[[str], Any] | None = None) -> Callable[[str], Any]:
    """An argparse ``type``: one of ``allowed`` (kept as a string), else ``also(text)`` if given."""

    def parse(text: str):
        if text in allowed:
            return text
        if also is not None:
            try:
                return also(text)
            except argparse.ArgumentTypeError as e:
                raise argparse.ArgumentTypeError(f"{e} or one of {', '.join(allowed)}") from None
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(allowed)}, got {text!r}")

    parse.__name__ = "choice"
    return parse


def path(text: str) -> str:
    """An argparse ``type``: a non-empty path (an empty one would silently mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must be a path, got {text!r}")
    return text


def _bounds(lo, hi, lo_open: bool = False, hi_open: bool = False) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    return ""


# ---------------------------------------------------------------------------------------- shared options
def add_output(p: argparse.ArgumentParser, help: str, *, required: bool = False, default=None) -> None:
    """``-o/--output`` and ``--force`` (which never lets an output replace an input)."""
    p.add_argument("-o", "--output", type=path, required=required, default=default, metavar="PATH", help=help)
    p.add_argument("--force", action="store_true", help="replace existing output files (never an input file)")


def add_seed(p: argparse.ArgumentParser, default: int = 0) -> None:
    p.add_argument("--seed", type=integer(0), default=default, help=f"random seed (default {default})")


def add_dtype(p: argparse.ArgumentParser, default: str | None, what: str | None = None, note: str = "") -> None:
    shown = default or what or "the model's own"
    help = f"floating-point precision (default: {shown}{'; ' + note if note else ''})"
    p.add_argument("--dtype", choices=DTYPES, default=default, help=help)


def add_reporting(p: argparse.ArgumentParser) -> None:
    """``--quiet``, ``--json`` and ``--debug``: every subcommand has them."""
    p.add_argument("--quiet", action="store_true", help="no progress bar and no report on stdout")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    # SUPPRESS: do not reset a top-level ``varinf --debug CMD`` to False
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the full traceback on errors (also VARINF_DEBUG=1)")  # fmt: skip


def dtype_of(args: argparse.Namespace):
    import torch

    return None if args.dtype is None else getattr(torch, args.dtype)


def progress_of(args: argparse.Namespace) -> bool:
    """``progress=`` for library calls: a bar only on a terminal (stderr), and never with ``--quiet``
    (:mod:`varinf.utils.progress_bars`; phases that take no flag follow the same rule through the command's
    ``progress_scope``)."""
    from ..utils.progress_bars import is_enabled

    return not args.quiet and is_enabled(None)


# ---------------------------------------------------------------------------------------- results
def jsonable(value):
    """Plain JSON values: tuples -> lists, tensors/arrays -> lists, NaN/inf -> None, paths -> str."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist"):  # torch tensors, numpy arrays and scalars
        return jsonable(value.tolist())
    return str(value)


def to_json(data) -> str:
    return json.dumps(jsonable(data), indent=2, allow_nan=False)


def emit(args: argparse.Namespace, text: str | Callable[[], str], data: dict | Callable[[], dict]) -> None:
    """The command's result: ``data`` as JSON with ``--json``, else ``text`` unless ``--quiet``."""
    out = getattr(args, "stdout", None) or sys.stdout  # main() sends other prints elsewhere under --json
    if args.json:
        print(to_json(data() if callable(data) else data), file=out)
    elif not args.quiet:
        print(text() if callable(text) else text, file=out)
    out.flush()
