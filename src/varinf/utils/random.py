"""Seeded blocks that leave torch's global random state as it was."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def seeded(seed: int | None):
    """Run the block on a private CPU RNG stream seeded with ``seed`` (torch's global state restored afterwards);
    ``None``: the global RNG itself, which the block then advances (fresh randomness on every call)."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
