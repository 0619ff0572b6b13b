r"""Compile a Stan program into a shared library with varinf's C glue, cached by content.

::

    program text ──stanc──> model.hpp ──g++ -c (precompiled Stan header)──> model.o ─┐
                                                                                     ├─ g++ -shared ─> model.so
    glue.cpp ──g++ -c (once per toolchain)─────────────────────────────────> glue.o ─┘

**Cache** (``$VARINF_CACHE_DIR``, else ``$XDG_CACHE_HOME/varinf``, else ``~/.cache/varinf``; nothing is
written anywhere else)::

    stan/toolchain-<key>/   stan_pch.hpp(.gch), glue.o     built once per toolchain (about 0.8 GB: the
                                                           precompiled Stan Math headers)
    stan/models/<hash>/     model.so, model.stan, info.json   one per program
    stan/locks/, stan/tmp/  lock files, builds in progress

``<key>`` hashes the compiler's version, stanc's and httpstan's versions, the flags and the glue's source;
``<hash>`` hashes the key, the program text (and included files) and the file name Stan's messages name.
Every entry is built in a fresh folder under ``stan/tmp`` and renamed into place when complete, under an
advisory lock (``fcntl.flock``) so that a second process compiling the same program waits and then reuses
the first one's result; where locks do not work the rename still makes the first finished build win, and no
reader ever sees a partial entry. A cached program loads in milliseconds.

**Compile time.** Stan Math's headers take most of a model's compile: parsing them costs about 11 s of CPU
per model, instantiating the model 5-10 s. The toolchain entry holds them precompiled (g++ ``.gch``), built
once in about 30 s of CPU, and the glue (JSON data, gradients) is compiled once against Stan's virtual
``model_base`` interface, so each program compiles only its own code (``benchmarks/results/stan_bridge.md``
has the measured times). ``VARINF_STAN_PCH=0`` turns the precompiled header off (saves its disk space).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .toolchain import GLUE_SOURCE, StanFiles, StanToolchainError, Toolchain, find_stan, find_toolchain

__all__ = ["CompiledProgram", "StanCompileError", "cache_dir", "compile_program", "stanc_error"]

PCH_HEADER = """\
// varinf: the Stan headers every model and the glue include, precompiled once per toolchain
#include <stan/model/model_header.hpp>
#include <stan/io/empty_var_context.hpp>
#include <stan/io/json/json_data.hpp>
#include <stan/model/log_prob_grad.hpp>
"""
CLASS_NAME = "varinf_model"  # the C++ class stanc generates (one per library; the display name lives in Python)


class StanCompileError(ValueError):
    """A Stan program that stanc or the C++ compiler rejects; the message is one line."""


@dataclass(frozen=True)
class CompiledProgram:
    """A compiled program: its shared library and what ``stanc --info`` says about it (data types)."""

    library: Path
    info: dict
    key: str


def cache_dir() -> Path:
    """varinf's cache folder: ``$VARINF_CACHE_DIR``, else ``$XDG_CACHE_HOME/varinf``, else ``~/.cache/varinf``."""
    if os.environ.get("VARINF_CACHE_DIR"):
        return Path(os.environ["VARINF_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "varinf"


def _stan_root() -> Path:
    root = cache_dir() / "stan"
    try:
        for sub in ("models", "locks", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StanToolchainError(f"cannot use the cache folder {root} ({e.strerror}); set VARINF_CACHE_DIR") from None
    return root


# ---------------------------------------------------------------------------------------------------- stanc
_HEADER = re.compile(r"^(Syntax|Semantic) error in '([^']*)', line (\d+), column (\d+)")


def stanc_error(output: str, filename: str) -> str:
    """stanc's multi-line error as one line: ``file: syntax error at line L, column C: message``."""
    lines = [ln.rstrip() for ln in output.strip().splitlines()]
    head = next((m for m in map(_HEADER.match, lines) if m), None)
    dashes = [i for i, ln in enumerate(lines) if ln.strip().startswith("-----")]
    body = lines[dashes[-1] + 1 :] if len(dashes) >= 2 else lines[1:] if head else lines
    message = " ".join(ln.strip() for ln in body if ln.strip()) or (lines[0] if lines else "stanc failed")
    if head is None:
        return f"{filename}: {message}"
    kind, _, line, col = head.groups()
    return f"{filename}: {kind.lower()} error at line {line}, column {col}: {message}"


def _stanc(tc: Toolchain | StanFiles, args: list[str], filename: str, cwd: Path) -> subprocess.CompletedProcess:
    try:
        out = subprocess.run([str(tc.stanc), *args], capture_output=True, text=True, cwd=cwd, timeout=600)
    except OSError as e:
        raise StanToolchainError(f"stanc at {tc.stanc} does not run ({e})") from None
    if out.returncode != 0:
        raise StanCompileError(stanc_error(out.stderr or out.stdout, filename))
    return out


def _include_paths(
    program: str, folder: Path | None, tc: Toolchain | StanFiles, filename: str
) -> tuple[list[str], bytes]:
    """stanc's ``--include-paths`` and the included files' contents (for the cache key), when the program
    has ``#include`` lines."""
    if folder is None or "#include" not in program:
        return [], b""
    with tempfile.TemporaryDirectory(dir=_stan_root() / "tmp") as tmp:
        src = Path(tmp) / "program.stan"
        src.write_text(program, encoding="utf-8")
        args = ["--info", f"--include-paths={folder}", f"--filename-in-msg={filename}", str(src)]
        info = json.loads(_stanc(tc, args, filename, Path(tmp)).stdout)
    extra = b"".join(Path(f).read_bytes() for f in info.get("included_files", []) if Path(f).is_file())
    return [f"--include-paths={folder}"], extra


# ---------------------------------------------------------------------------------------------------- cache
@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive advisory lock on ``path`` for the block (no lock where the file system has none)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: atomic renames alone keep the cache consistent
        yield
        return
    with open(path, "a+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX)
        except OSError:
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _publish(tmp: Path, final: Path) -> None:
    """Rename the finished build ``tmp`` to ``final``; if another process got there first, keep theirs."""
    umask = os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError):
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0o700 would hide a shared cache from other users
    try:
        os.rename(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _sweep(tmp_root: Path, age_s: float = 86400.0) -> None:
    """Remove builds left behind by killed processes (older than a day)."""
    now = time.time()
    for p in tmp_root.iterdir():
        with contextlib.suppress(OSError):
            if now - p.stat().st_mtime > age_s:
                shutil.rmtree(p, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------- compiling
class _Status:
    """One status line on stderr while the compiler runs (only on a terminal)."""

    def __init__(self, what: str, show: bool | None = None):
        self.what, self.t0 = what, time.perf_counter()
        self.show = sys.stderr.isatty() if show is None else bool(show)
        self.stage = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True) if self.show else None

    def __enter__(self):
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()

    def _loop(self):
        while not self._stop.wait(0.5):
            sys.stderr.write(f"\r\033[Kvarinf: {self.what}: {self.stage} ({time.perf_counter() - self.t0:.0f} s)")
            sys.stderr.flush()


def _run_cxx(args: list[str], what: str, log: Path | None = None) -> None:
    try:
        out = subprocess.run(args, capture_output=True, text=True)
    except OSError as e:
        raise StanToolchainError(f"the C++ compiler {args[0]} does not run ({e})") from None
    if out.returncode != 0:
        text = (out.stderr or out.stdout).strip()
        first = next((ln for ln in text.splitlines() if "error" in ln), text.splitlines()[0] if text else "")
        kept = ""
        if log is not None:
            with contextlib.suppress(OSError):
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(text + "\n", encoding="utf-8")
                kept = f" (full output: {log})"
        if "Killed" in text or out.returncode in (-9, 137):
            first = "the compiler was killed (out of memory? it needs about 2 GB)"
        raise StanCompileError(f"{what} failed: {first.strip()}{kept}")


def _pch_enabled() -> bool:
    return os.environ.get("VARINF_STAN_PCH", "1") != "0"


def _toolchain_entry(tc: Toolchain, root: Path, status: _Status) -> Path:
    """``stan/toolchain-<key>``: the precompiled header and glue.o, built once (locked, atomic)."""
    final = root / f"toolchain-{tc.key}{'' if _pch_enabled() else '-nopch'}"
    if (final / "glue.o").is_file():
        return final
    with _locked(root / "locks" / f"{final.name}.lock"):
        if (final / "glue.o").is_file():
            return final
        tmp = Path(tempfile.mkdtemp(dir=root / "tmp", prefix="toolchain-"))
        try:
            include = []
            if _pch_enabled():
                status.stage = "precompiling the Stan headers (once per toolchain, about a minute)"
                (tmp / "stan_pch.hpp").write_text(PCH_HEADER, encoding="utf-8")
                _run_cxx([tc.cxx, *tc.compile_flags, "-x", "c++-header", str(tmp / "stan_pch.hpp"),
                          "-o", str(tmp / "stan_pch.hpp.gch")], "precompiling the Stan headers")  # fmt: skip
                include = ["-include", str(tmp / "stan_pch.hpp")]  # a .gch stays valid when its folder moves
            status.stage = "compiling varinf's Stan glue (once per toolchain)"
            _run_cxx([tc.cxx, *tc.compile_flags, *include, "-c", str(GLUE_SOURCE), "-o", str(tmp / "glue.o")],
                     "compiling varinf's Stan glue", root / "failed" / "glue.log")  # fmt: skip
            _publish(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def compile_program(program: str, filename: str, folder: Path | None = None, progress: bool | None = None,
                    check: Callable[[dict], None] | None = None) -> CompiledProgram:  # fmt: skip
    """The cached library of ``program`` (compiled now if needed). ``filename`` is what Stan's messages call
    the program; ``folder`` is searched for ``#include`` files; ``progress``: a status line on stderr while
    compiling (``None``: when stderr is a terminal); ``check(info)`` may refuse the program from
    ``stanc --info`` before any C++ is compiled. Raises :class:`StanCompileError` (stanc's
    message, one line) or :class:`StanToolchainError` (what to install)."""
    root = _stan_root()
    stan = find_stan()
    includes, included = _include_paths(program, folder, stan, filename)
    try:
        tc = find_toolchain()
    except StanToolchainError:  # no compiler: say first what is wrong with the program, if anything
        with tempfile.TemporaryDirectory(dir=root / "tmp") as tmp:
            (Path(tmp) / "model.stan").write_text(program, encoding="utf-8")
            args = ["--info", f"--filename-in-msg={filename}", *includes, str(Path(tmp) / "model.stan")]
            info = json.loads(_stanc(stan, args, filename, Path(tmp)).stdout)
        if check is not None:
            check(info)
        raise
    h = hashlib.sha256()
    for part in (tc.key.encode(), filename.encode(), program.encode(), included, str(_pch_enabled()).encode()):
        h.update(part + b"\0")
    key = h.hexdigest()[:24]
    final = root / "models" / key
    if (final / "model.so").is_file():
        info = json.loads((final / "info.json").read_text())
        if check is not None:
            check(info)
        return CompiledProgram(final / "model.so", info, key)
    with contextlib.suppress(OSError):
        _sweep(root / "tmp")
    tmp = Path(tempfile.mkdtemp(dir=root / "tmp", prefix="model-"))
    try:
        src = tmp / "model.stan"
        src.write_text(program, encoding="utf-8")
        common = [f"--filename-in-msg={filename}", *includes, str(src)]
        info = json.loads(_stanc(tc, ["--info", *common], filename, tmp).stdout)  # syntax errors come first
        if check is not None:
            check(info)
        _stanc(tc, [f"--name={CLASS_NAME}", f"--o={tmp / 'model.hpp'}", *common], filename, tmp)
        (tmp / "info.json").write_text(json.dumps(info), encoding="utf-8")
        with _locked(root / "locks" / f"{key}.lock"):
            if (final / "model.so").is_file():  # another process compiled it while we waited
                return CompiledProgram(final / "model.so", info, key)
            with _Status(f"compiling Stan program {filename}", progress) as status:
                entry = _toolchain_entry(tc, root, status)
                pch = ["-include", str(entry / "stan_pch.hpp")] if (entry / "stan_pch.hpp.gch").is_file() else []
                status.stage = "C++ (about 10-30 s)"
                log = root / "failed" / f"{key}.log"
                _run_cxx([tc.cxx, *tc.compile_flags, *pch, "-x", "c++", "-c", str(tmp / "model.hpp"),
                          "-o", str(tmp / "model.o")], f"C++ compilation of {filename}", log)  # fmt: skip
                _run_cxx([tc.cxx, "-shared", "-o", str(tmp / "model.so"), str(entry / "glue.o"), str(tmp / "model.o"),
                          *tc.link_flags], f"linking {filename}", log)  # fmt: skip
            for p in (tmp / "model.hpp", tmp / "model.o"):
                p.unlink()
            _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return CompiledProgram(final / "model.so", info, key)
