"""``varinf`` command line: thin argument parsing, one public function per subcommand.

Each module in ``varinf.cli`` that defines ``register(subparsers)`` adds its subcommand(s); the parser
it registers sets ``func`` to a callable taking the parsed arguments and returning an exit code. Shared
options and argument types live in :mod:`.options`, input/output path rules in :mod:`.paths`.

Errors reach the user as one line, ``varinf CMD: error: ...``: bad arguments exit 2 (while parsing,
before anything runs); any exception a run raises exits 1 (``--debug`` or ``VARINF_DEBUG=1`` prints its
traceback instead); Ctrl-C exits 130 after the atomic writers have removed their temporary files.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import sys
import traceback
import warnings
from collections.abc import Iterator

__all__ = ["build_parser", "describe", "iter_commands", "main", "warning_line"]


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): ``varinf fit: error: argument --lr: ...``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = Parser(prog="varinf", description="Variational inference in PyTorch.")
    parser.add_argument("--version", action="version", version=f"varinf {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors (also VARINF_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    package = importlib.import_module("varinf.cli")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name in ("main", "__main__") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"varinf.cli.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    for prog, p in iter_commands(parser):
        p.set_defaults(prog=prog)  # the name errors are reported under, e.g. "varinf cavi gmm"
    return parser


def iter_commands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every runnable (leaf) subcommand as ``(prog, parser)``, e.g. ``("varinf codec train", ...)``."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser.prog, parser
        return
    seen = set()
    for action in subs:
        for child in action.choices.values():
            if id(child) not in seen:  # aliases map several names to one parser
                seen.add(id(child))
                yield from iter_commands(child)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe(e: BaseException) -> str:
    """A one-line account of ``e`` for the user, naming the path for file-system errors."""
    if isinstance(e, OSError) and e.filename is not None:
        msg = f"{e.filename}: {e.strerror or e}"
        if e.filename2 is not None:
            msg += f" ({e.filename2})"
    elif isinstance(e, KeyError) and len(e.args) == 1 and isinstance(e.args[0], str):
        msg = e.args[0]  # str(KeyError) would add quotes
    elif isinstance(e, MemoryError):
        msg = f"out of memory{': ' + str(e) if str(e) else ''} (try smaller sizes)"
    elif isinstance(e, ValueError | OSError | RuntimeError | KeyError):
        msg = str(e) or type(e).__name__  # carry their own explanation (varinf's errors are ValueErrors)
    elif isinstance(e, TypeError):
        msg = f"TypeError: {e}"
    else:  # not an error a user should be able to cause: say how to see more
        msg = f"internal error, {type(e).__name__}: {e} (rerun with --debug for the traceback and report it)"
    return _one_line(msg)


def warning_line(prog: str, message: Warning | str, category: type[Warning]) -> str:
    """A warning as the one line the CLI prints on stderr: ``varinf fit: warning: <short form>``.

    The short form is the warning's ``short`` attribute when it has one (a message catalogue may render a
    CLI-specific text there), else its first sentence: the report on stdout and ``--json`` hold the full
    text. Warnings from outside varinf (torch, ArviZ, a user's model file) name their category."""
    short = getattr(message, "short", None)
    text = _one_line(short() if callable(short) else short) if short else _first_sentence(_one_line(message))
    foreign = not getattr(category, "__module__", "").startswith("varinf")
    return f"{prog}: warning: {text}" + (f" ({category.__name__})" if foreign else "")


def _first_sentence(text: str) -> str:
    """``text`` up to the end of its first sentence (a period followed by a capital letter starts the next)."""
    for i in range(len(text) - 2):
        if text[i] == "." and text[i + 1] == " " and text[i + 2].isupper():
            return text[: i + 1]
    return text


@contextlib.contextmanager
def _warnings_on_stderr(prog: str):
    """Every Python warning a run raises (ConvergenceWarning, DiagnosticWarning, a library's or the user's
    model's), once per distinct text, as one line on stderr, above any progress bar; ``--quiet`` and
    ``--json`` never hide them."""
    from ..utils.progress_bars import write

    seen: set[tuple[type, str]] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = warning_line(prog, message, category)
        if (category, text) not in seen:
            seen.add((category, text))
            write(text)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


@contextlib.contextmanager
def _chatter(args: argparse.Namespace):
    """What a run prints besides its results (a user's model file, per-epoch lines): to stderr under
    ``--json`` (stdout holds only the JSON), nowhere under ``--quiet``, else to stdout."""
    if getattr(args, "quiet", False):
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            yield
    elif getattr(args, "json", False):
        with contextlib.redirect_stdout(sys.stderr):
            yield
    else:
        yield


def main(argv: list[str] | None = None) -> int:
    from ..utils.progress_bars import progress_scope

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    prog = getattr(args, "prog", f"varinf {args.command}")
    debug = getattr(args, "debug", False) or os.environ.get("VARINF_DEBUG", "") not in ("", "0")
    args.stdout = sys.stdout  # the results go here (see options.emit); anything else printed goes to _chatter
    try:
        with (
            _warnings_on_stderr(prog),
            _chatter(args),
            progress_scope(False if getattr(args, "quiet", False) else None),
        ):
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `varinf ... | head`: the reader left; stop quietly
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {describe(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
