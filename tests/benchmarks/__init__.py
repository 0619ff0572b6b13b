"""Tests of the benchmark scripts' conventions. The scripts import each other as top-level modules (they run as
``python benchmarks/x.py``), so benchmarks/ goes on sys.path for this package."""

import sys
from pathlib import Path

_BENCHMARKS = str(Path(__file__).resolve().parents[2] / "benchmarks")
if _BENCHMARKS not in sys.path:
    sys.path.insert(0, _BENCHMARKS)
