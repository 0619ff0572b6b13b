"""The codec scripts' record of what produced a result (``run_environment``). The shared helper is ``_results.py``
(``_results.provenance`` records more: the interpreter, environment variables and ``taskset`` in the command, the
uncommitted paths, every package version); ``git_commit`` comes from it. Never imported by the package."""

from __future__ import annotations

from _results import git_commit

__all__ = ["git_commit", "run_environment"]


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
