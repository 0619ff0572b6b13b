"""Where the benchmark scripts and their results live, and the scripts as modules."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
RESULTS = BENCHMARKS / "results"


def script(path: str) -> ModuleType:
    """The benchmark script ``benchmarks/<name>.py`` as a module (imported once)."""
    name = Path(path).stem
    if Path(path).parent.name != "benchmarks" or not (BENCHMARKS / f"{name}.py").is_file():
        raise FileNotFoundError(f"{path}: not a script in benchmarks/")
    return importlib.import_module(name)
