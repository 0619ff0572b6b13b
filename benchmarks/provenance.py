"""Kept so that scripts written against it keep working: the shared helper is ``_results.py`` (use
``_results.provenance(__file__)`` and ``_results.save``). Never imported by the package."""

from __future__ import annotations

from _results import git_commit, provenance

__all__ = ["git_commit", "run_environment"]


def run_environment(threads: int) -> dict:
    """The old record (command, commit, versions, threads, load) as ``_results.provenance`` now records it."""
    import sys

    meta = provenance(sys.argv[0])
    meta.pop("_t0", None)
    return {**meta, "torch_threads": threads}
