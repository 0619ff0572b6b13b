"""Path checks every subcommand runs before it spends any time: inputs exist and are what they should be,
outputs are writable and replace nothing the user had.

Rules (one-line errors that name the user's path, never a temporary file):

- an input must exist; a file input that is a folder gets "is a directory";
- an output is never an input, not even through a symlink or a hard link (same device and inode), and
  ``--force`` does not change that;
- an existing output is replaced only with ``--force``, and only if it is a regular file (never a folder,
  a device or a FIFO);
- the output's folder (or its nearest existing ancestor, which is then created) must be writable;
- :func:`writing` writes several outputs as one unit: each goes to a temporary file beside it and all are
  renamed into place only when every one is complete, so an error or Ctrl-C leaves none of them behind.

Example::

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> out = check_outputs([d / "a.txt"], inputs=[], force=False)
    >>> with writing(out, force=False) as (tmp,):
    ...     _ = tmp.write_text("hi")
    >>> (d / "a.txt").read_text()
    'hi'
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..utils import atomic_output

__all__ = ["check_output_folder", "check_outputs", "input_file", "input_folder", "model_inputs", "writing"]


def input_file(path: str | os.PathLike) -> Path:
    """``path`` as an existing, readable regular file (or FIFO/device: anything but a folder)."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory (expected a file)", str(path))
    if not p.exists():
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
    if not os.access(p, os.R_OK):
        raise PermissionError(errno.EACCES, "permission denied (cannot read it)", str(path))
    return p


def input_folder(path: str | os.PathLike) -> Path:
    """``path`` as an existing folder."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(path))
    if not p.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(path))
    return p


def model_inputs(model: str | os.PathLike | None) -> list[Path]:
    """The files of a ``--model`` argument (a folder's files, or the file itself) that no output may replace."""
    if model is None:
        return []
    p = Path(model)
    if p.is_dir():
        return [f for f in p.iterdir() if f.is_file()]
    return [p] if p.exists() else []


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # follows symlinks; compares device and inode (catches hard links)
    except OSError:
        return False


def check_outputs(
    outputs: Iterable[str | os.PathLike], *, inputs: Iterable[str | os.PathLike], force: bool
) -> list[Path]:
    """Refuse outputs that are an input, an existing file (without ``force``), a folder, a special file, or
    in a folder that cannot be written. Returns the outputs as paths."""
    inputs = [Path(i) for i in inputs]
    checked = []
    for out in outputs:
        p = Path(out)
        for i in inputs:
            if _same(p, i):
                same = "" if str(p) == str(i) else f" ({i})"
                raise ValueError(f"{p}: is the input file{same}; choose another output (--force never replaces an input)")
        if p.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a directory (give a file name)", str(p))
        if p.exists() or p.is_symlink():
            if not force:
                raise FileExistsError(errno.EEXIST, "exists; pass --force to overwrite it", str(p))
            if p.exists() and not p.is_file():  # a device, a FIFO, a socket (a symlink's target counts)
                raise FileExistsError(errno.EEXIST, "exists and is not a regular file; it is never replaced", str(p))
        _check_writable_folder(p)
        checked.append(p)
    return checked


def check_output_folder(
    folder: str | os.PathLike, names: Iterable[str], *, inputs: Iterable[str | os.PathLike], force: bool
) -> list[Path]:
    """The files ``folder/name`` a command will write, checked as :func:`check_outputs` does."""
    d = Path(folder)
    if d.exists() and not d.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a directory", str(d))
    return check_outputs([d / n for n in names], inputs=inputs, force=force)


def _check_writable_folder(p: Path) -> None:
    """The nearest existing ancestor of ``p`` must be a folder we may create files in."""
    parent = p.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"cannot create it: {parent} is not a directory", str(p))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"cannot write in {parent} (permission denied or read-only)", str(p))


@contextlib.contextmanager
def writing(paths: Iterable[Path], *, force: bool) -> Iterator[list[Path]]:
    """Temporary paths for ``paths``; all are renamed into place together when the block ends normally.

    On any exception (``KeyboardInterrupt`` included) every temporary file is removed and no destination
    changes. (Each rename is atomic; only an interruption between the renames themselves, microseconds
    apart, could leave some of the outputs new and others missing, never a partial file.)
    """
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(atomic_output(p, overwrite=force)) for p in paths]
