"""Seeded blocks that leave torch's global random state as it was."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def seeded(seed: int | None):
    """Run the block on a private RNG stream seeded with ``seed`` (torch's global state restored afterwards: the
    CPU generator's, and the CUDA devices' when CUDA is in use); ``None``: the global RNG itself, which the block
    then advances (fresh randomness on every call)."""
    if seed is None:
        yield
        return
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield
