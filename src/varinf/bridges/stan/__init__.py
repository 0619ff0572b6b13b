"""Stan programs as varinf models: ``StanModel(program, data)`` (see README.md in ``varinf/bridges``).

Needs the ``stan`` extra (``pip install 'varinf[stan]'``: the httpstan wheel carries stanc and the Stan
headers and libraries) and a C++17 compiler (Debian/Ubuntu: ``apt-get install g++``).
"""

from .build import StanCompileError, cache_dir, compile_program
from .model import StanEngine, StanModel
from .toolchain import StanToolchainError, find_toolchain

__all__ = [
    "StanCompileError",
    "StanEngine",
    "StanModel",
    "StanToolchainError",
    "cache_dir",
    "compile_program",
    "find_toolchain",
]
