"""Kept for the scripts that still import it (fuzz_vif.py): the shared helper is ``_results.py``."""

from _results import git_commit

__all__ = ["git_commit"]
