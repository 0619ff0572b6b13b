r"""The process group of a ``torchrun`` job: which process this is, and the few collectives varinf uses.

One place for the chore (the VAE trainer and posterior VI both use it). Launch any script with::

    torchrun --nproc_per_node=2 fit_big.py                       # one machine, 2 processes
    torchrun --nnodes=2 --nproc_per_node=8 --node_rank=$RANK \
             --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 fit_big.py   # two machines (run on each)

:func:`init_distributed` joins the group torchrun describes in its environment variables (``WORLD_SIZE``,
``RANK``, ``MASTER_ADDR`` ...): gloo on CPU, NCCL when ``device="cuda"``. Without torchrun it returns a
one-process :class:`World` and nothing else changes.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["World", "all_reduce_sum", "init_distributed", "shard_rows", "world"]


@dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` of ``size`` processes (``size == 1``: no torch.distributed)."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()


def init_distributed(device: str | torch.device | None = None) -> World:
    """Join the process group set up by ``torchrun`` (gloo, or NCCL for a CUDA ``device``), or return a
    one-process world. With NCCL each process uses GPU ``LOCAL_RANK``."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        cuda = device is not None and torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
        atexit.register(_leave)
    return world()


def _leave() -> None:
    """Tear the process group down before the interpreter exits: a gloo group left to the C++ destructors at
    exit can abort the process ("terminate called without an active exception") after the work is done."""
    if dist.is_initialized():
        dist.destroy_process_group()


def world() -> World:
    """The current process group (a one-process world when torch.distributed is not initialized)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return World(rank=dist.get_rank(), size=dist.get_world_size())
    return World()


def all_reduce_sum(x: Tensor, w: World) -> Tensor:
    """Sum ``x`` over the processes of ``w`` (in place; returned for chaining). A no-op for one process."""
    if w.size > 1:
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


def shard_rows(x, w: World | None = None):
    """This process's contiguous block of rows of ``x`` (a tensor, or a dict of tensors with equal first
    dimensions): block ``rank`` of ``torch.tensor_split(x, size)``. Rank order = row order, which is what
    a distributed :class:`~varinf.models.Model` expects."""
    w = w or world()
    if isinstance(x, dict):
        return {k: shard_rows(v, w) for k, v in x.items()}
    return torch.tensor_split(x, w.size)[w.rank] if w.size > 1 else x
