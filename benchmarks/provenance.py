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
