r"""Data-parallel training (``torchrun``, DDP with the gloo backend on CPU) that matches one process.

Every process holds the whole data set and the same random generators. For each *global* batch all
processes draw the same permutation, binarization and reparameterization noise :math:`\epsilon` for the
whole batch, then keep only their :class:`Shard` of rows. Each process's loss is the mean over its rows,
DDP averages gradients, so the update equals the single-process update on the global batch up to
floating-point summation order: same results as one process, not just in distribution.

::

    global batch x (B rows) --shard--> rank r keeps rows [r*B/W, (r+1)*B/W)
    eps ~ N(0, I) of shape (S, B, D) drawn identically everywhere --shard--> (S, B/W, D)
    loss_r = mean over its rows; grads all-reduced (averaged) by DDP; identical optimizer steps

Launch: ``torchrun --nproc_per_node=2 -m varinf vae train ...`` (or any script calling
:func:`varinf.vae.train`); :func:`init_distributed` reads torchrun's environment variables.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal

from ..distributed import World, init_distributed

__all__ = ["Shard", "ShardedNormal", "World", "init_distributed"]

_NO_SAMPLE = torch.Size()


@dataclass(frozen=True)
class Shard:
    """Rows ``[start, start + length)`` of a global batch of ``total`` rows."""

    start: int
    length: int
    total: int

    @staticmethod
    def of(world: World, batch_size: int) -> Shard:
        if batch_size % world.size:
            raise ValueError(f"batch_size {batch_size} must be divisible by the number of processes {world.size}")
        n = batch_size // world.size
        return Shard(world.rank * n, n, batch_size)

    def rows(self, x: Tensor, dim: int = 0) -> Tensor:
        return x.narrow(dim, self.start, self.length)

    def standard_normal(self, sample_shape: torch.Size, batch_shape: torch.Size, event_shape: torch.Size, like: Tensor):
        """Noise for this shard cut out of noise for the whole batch (batch dim = first of ``batch_shape``)."""
        if len(batch_shape) < 1 or batch_shape[0] != self.length:
            raise ValueError(f"sharded distribution needs batch shape ({self.length}, ...), got {tuple(batch_shape)}")
        full = (*sample_shape, self.total, *batch_shape[1:], *event_shape)
        eps = torch.empty(full, dtype=like.dtype, device=like.device).normal_()
        return self.rows(eps, len(sample_shape))

    def wrap(self, q: Distribution) -> Distribution:
        """The same distribution whose ``rsample`` draws this shard's rows of whole-batch noise."""
        if isinstance(q, Independent) and isinstance(q.base_dist, Normal):
            return ShardedNormal(q.base_dist.loc, q.base_dist.scale, q.reinterpreted_batch_ndims, self)
        wrap = getattr(q, "with_shard", None)
        if wrap is None:
            raise ValueError(f"cannot shard the noise of {type(q).__name__}; use a Normal or GaussianChain encoder")
        return wrap(self)


class ShardedNormal(Independent):
    """``Independent(Normal(loc, scale))`` whose reparameterized draws come from :meth:`Shard.standard_normal`.

    A subclass of ``Independent`` so every registered KL (e.g. to a standard-normal prior) still applies.
    """

    def __init__(self, loc: Tensor, scale: Tensor, ndims: int, shard: Shard):
        super().__init__(Normal(loc, scale, validate_args=False), ndims, validate_args=False)
        self.shard = shard

    def rsample(self, sample_shape=_NO_SAMPLE) -> Tensor:
        base = self.base_dist
        eps = self.shard.standard_normal(torch.Size(sample_shape), self.batch_shape, self.event_shape, base.loc)
        return base.loc + base.scale * eps
