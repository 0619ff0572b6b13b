"""Atomic file output: a reader sees the old file or the new one, never a partial file.

Every writer in varinf goes through :func:`atomic_output` (or its one-call forms :func:`atomic_write_bytes`
and :func:`atomic_write_text`): the data goes to a temporary file in the destination's folder (same file
system, so the final ``os.replace`` is atomic), which is flushed to disk and then renamed over the
destination. On any exception, ``KeyboardInterrupt`` included, the temporary file is removed and the
destination is untouched. Errors name the destination, never the temporary file.

Example::

    >>> import tempfile, pathlib
    >>> from varinf.utils import atomic_output, atomic_write_text
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_text(d / "a.txt", "hello\\n").read_text()
    'hello\\n'
    >>> with atomic_output(d / "b.npy") as tmp:  # for writers that want a path (np.save, savefig, torch.save)
    ...     tmp.write_bytes(b"data")
    4
    >>> sorted(p.name for p in d.iterdir())
    ['a.txt', 'b.npy']
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_output", "atomic_write_bytes", "atomic_write_text"]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on normal exit, fsync it and rename it to ``path``.

    The parent folder is created. With ``overwrite=False`` an existing ``path`` (checked before and after
    the write) raises ``FileExistsError`` and is left as it was. The file gets the permissions ``open()``
    would give it (``0o666`` less the umask), not ``mkstemp``'s ``0o600``.
    """
    path = Path(path)
    _refuse_existing(path, overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _naming(e, path) from None
    os.close(fd)
    tmp = Path(name)
    try:
        try:
            yield tmp
            _refuse_existing(path, overwrite)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:  # about the temporary file (or no file): say which file the user asked for
            if e.errno is not None and (e.filename is None or e.filename in (name, tmp)):
                raise _naming(e, path) from None
            raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`); returns ``path``."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_output`); returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if not overwrite and path.exists():
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))


def _naming(e: OSError, path: Path) -> OSError:
    """The same error, about ``path`` (the user's file) instead of the temporary file."""
    return type(e)(e.errno, e.strerror, str(path))
