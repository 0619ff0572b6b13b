"""Shared by the benchmark scripts (run as ``python benchmarks/<script>.py``, so this folder is on sys.path):
what produced a result. Never imported by the package."""

from __future__ import annotations

import subprocess


def git_commit() -> str:
    """HEAD's short hash, plus the varinf source folders with uncommitted changes (they affect the numbers)."""
    try:
        run = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True, check=True).stdout
        head = run("rev-parse", "--short", "HEAD").strip()
        dirty = sorted({ln[3:].split("/")[2] for ln in run("status", "--porcelain", "--", "src/varinf").splitlines()})
        return head + (f" (uncommitted changes in src/varinf/{{{','.join(dirty)}}})" if dirty else "")
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


def run_environment(threads: int) -> dict:
    """What a results JSON records about its run: the exact command line, commit, package versions, threads, load."""
    import os
    import platform
    import shlex
    import sys

    import numpy as np
    import PIL
    import torch

    return {
        "command": shlex.join(["python", *sys.argv]),
        "commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "torch_threads": threads,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "affinity": sorted(os.sched_getaffinity(0)),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
