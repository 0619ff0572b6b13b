"""Where the Stan toolchain lives: stanc, the Stan Math headers and libraries (the ``httpstan`` wheel), the
system C++ compiler, and the flags every compile of a varinf Stan library uses.

httpstan is located without being imported (``importlib.util.find_spec``). The flags follow httpstan's own
model builds (macros, ``_GLIBCXX_USE_CXX11_ABI=0`` to link its prebuilt TBB and SUNDIALS) with ``-std=c++17``,
``-O2`` (as fast as ``-O3`` on the models we timed, and faster to compile) and hidden symbols, so that only
the ``vf_`` C functions are exported and libraries of several models coexist in one process.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "GLUE_SOURCE",
    "StanFiles",
    "StanToolchainError",
    "Toolchain",
    "find_compiler",
    "find_stan",
    "find_toolchain",
]

GLUE_SOURCE = Path(__file__).with_name("glue.cpp")

MACROS = (
    "-DBOOST_DISABLE_ASSERTS",
    "-DBOOST_PHOENIX_NO_VARIADIC_EXPRESSION",
    "-DSTAN_THREADS",
    "-D_REENTRANT",
    "-D_GLIBCXX_USE_CXX11_ABI=0",
)
CXXFLAGS = ("-std=c++17", "-O2", "-fPIC", "-fvisibility=hidden", "-w")
LIBRARIES = ("-ltbb", "-lsundials_cvodes", "-lsundials_idas", "-lsundials_nvecserial")

_INSTALL_STAN = "pip install 'varinf[stan]' (the httpstan wheel carries stanc and the Stan headers)"
_INSTALL_CXX = (
    "install one: Debian/Ubuntu `apt-get install g++`, Fedora `dnf install gcc-c++`, macOS `xcode-select --install`; "
    "or set CXX to a C++17 compiler"
)


class StanToolchainError(RuntimeError):
    """A piece of the Stan toolchain is missing (httpstan, stanc, a C++ compiler); the message says what to install."""


@dataclass(frozen=True)
class Toolchain:
    """Paths and versions of one toolchain; ``key`` (a hash of everything that shapes a compiled library)
    names its cache entries."""

    stanc: Path
    include: Path
    lib: Path
    cxx: str
    cxx_version: str
    stan_version: str
    httpstan_version: str

    @property
    def compile_flags(self) -> list[str]:
        return [*CXXFLAGS, *MACROS, f"-I{self.include}"]

    @property
    def link_flags(self) -> list[str]:
        return [f"-L{self.lib}", f"-Wl,-rpath,{self.lib}", *LIBRARIES]

    @functools.cached_property
    def key(self) -> str:
        h = hashlib.sha256()
        for part in (self.cxx_version, self.stan_version, self.httpstan_version, " ".join(self.compile_flags),
                     " ".join(self.link_flags), GLUE_SOURCE.read_bytes().decode()):  # fmt: skip
            h.update(part.encode() + b"\0")
        return h.hexdigest()[:16]


def _package_dir() -> Path:
    spec = importlib.util.find_spec("httpstan")
    if spec is None or not spec.submodule_search_locations:
        raise StanToolchainError(f"Stan models need the Stan toolchain: {_INSTALL_STAN}")
    return Path(next(iter(spec.submodule_search_locations)))


def find_compiler() -> tuple[str, str]:
    """The C++ compiler (``$CXX``, else ``g++``) and its version line; :class:`StanToolchainError` naming the
    package to install when there is none."""
    wanted = os.environ.get("CXX") or "g++"
    path = shutil.which(wanted)
    if path is None:
        where = f"$CXX={wanted!r} not found" if os.environ.get("CXX") else "no C++ compiler (g++) found"
        raise StanToolchainError(f"compiling a Stan model needs a C++17 compiler: {where}; {_INSTALL_CXX}")
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise StanToolchainError(f"the C++ compiler {path} does not run ({e}); {_INSTALL_CXX}") from None
    return path, (out.splitlines() or [path])[0].strip()


@dataclass(frozen=True)
class StanFiles:
    """The httpstan wheel's stanc, headers and libraries (what can be used without a C++ compiler)."""

    stanc: Path
    include: Path
    lib: Path
    stan_version: str
    httpstan_version: str


@functools.lru_cache(maxsize=1)
def find_stan() -> StanFiles:
    """Locate stanc, the headers and libraries (cached for the process)."""
    pkg = _package_dir()
    stanc, include, lib = pkg / "stanc", pkg / "include", pkg / "lib"
    missing = [str(p) for p in (stanc, include / "stan" / "model" / "model_base.hpp", lib) if not p.exists()]
    if missing:
        raise StanToolchainError(f"the httpstan installation at {pkg} is incomplete (missing {missing[0]}); "
                                 f"reinstall it: {_INSTALL_STAN}")  # fmt: skip
    try:
        version = subprocess.run([str(stanc), "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    except OSError as e:
        raise StanToolchainError(f"stanc at {stanc} does not run ({e}); reinstall it: {_INSTALL_STAN}") from None
    return StanFiles(stanc, include, lib, version, importlib.metadata.version("httpstan"))


@functools.lru_cache(maxsize=1)
def find_toolchain() -> Toolchain:
    """:func:`find_stan` plus the C++ compiler (cached for the process)."""
    stan = find_stan()
    cxx, cxx_version = find_compiler()
    return Toolchain(stan.stanc, stan.include, stan.lib, cxx, cxx_version, stan.stan_version, stan.httpstan_version)
