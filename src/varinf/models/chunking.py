r"""Bounded-memory sums over a plate's rows, differentiable, and summed over the processes of a job.

A model with data evaluates :math:`\sum_{i} \log p(x_i \mid z_s)` for ``S`` draws at once. Done in one
piece that is an ``(S, N)`` tensor (4000 draws × 1M rows = 16 GB in float32); here the rows are cut into
chunks so that the working set stays under a memory budget::

    rows per chunk = max_memory // (S · itemsize · TEMPORARIES)        TEMPORARIES = 8 (16 with gradients)

i.e. the likelihood may make up to 8 temporaries of shape ``(S, rows)`` (16 while autograd keeps the
graph of one chunk) within ``max_memory`` (default 1 GiB, ``Model(max_memory=...)``).

With gradients and more than one chunk, or with several processes, the sum is a custom autograd function
whose forward pass computes the value *and* its gradient chunk by chunk (each chunk's graph is freed
before the next), sums both over the processes in one all-reduce, and whose backward pass just scales
that gradient: memory stays bounded, every process gets the same value and gradient, and nothing else in
the optimizer needs to know about processes. One chunk in one process is plain autograd (so Hessians
work there, e.g. the Laplace start on a subsample).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..distributed import World, all_reduce_sum

__all__ = ["DEFAULT_MAX_MEMORY", "TEMPORARIES", "reduced_sum", "rows_per_chunk"]

DEFAULT_MAX_MEMORY = 1 << 30  # bytes
TEMPORARIES = 8


def rows_per_chunk(num_draws: int, itemsize: int, max_memory: int, grad: bool = False) -> int:
    """How many rows one chunk may have for ``num_draws`` draws within ``max_memory`` bytes."""
    per_row = max(1, num_draws) * itemsize * TEMPORARIES * (2 if grad else 1)
    return max(1, int(max_memory) // per_row)


def reduced_sum(
    fn: Callable[[Sequence[Tensor], object], Tensor],
    inputs: Sequence[Tensor],
    chunks: Sequence[object],
    world: World,
) -> Tensor:
    r""":math:`\sum_{c \in \mathrm{chunks}} \mathrm{fn}(\mathrm{inputs}, c)`, summed over ``world``'s processes.

    ``fn(inputs, chunk) -> (*S,)`` must be differentiable in ``inputs`` (tensors of shape ``(*S, ...)``).
    Returns ``(*S,)``; differentiable in ``inputs`` (first order when chunked or distributed).
    """
    inputs = tuple(inputs)
    if world.size == 1 and len(chunks) == 1:  # plain autograd (and torch.func transforms) see through
        return fn(inputs, chunks[0])
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in inputs)):
        with torch.no_grad():
            total = _sum(fn(inputs, c) for c in chunks)
        return all_reduce_sum(total, world) if world.size > 1 else total
    return _ChunkedSum.apply(fn, chunks, world, *inputs)


def _sum(values) -> Tensor:
    total = None
    for v in values:
        total = v if total is None else total + v
    return total


class _ChunkedSum(torch.autograd.Function):
    """Value and gradient computed in the forward pass, chunk by chunk, then all-reduced together."""

    @staticmethod
    def forward(ctx, fn, chunks, world, *inputs):
        leaves = [t.detach().requires_grad_(t.requires_grad) for t in inputs]
        wants = [t for t in leaves if t.requires_grad]
        total, grads = None, [torch.zeros_like(t) for t in wants]
        with torch.enable_grad():
            for c in chunks:
                v = fn(leaves, c)
                gs = torch.autograd.grad(v.sum(), wants, allow_unused=True)
                for acc, g in zip(grads, gs):
                    if g is not None:
                        acc.add_(g)
                total = v.detach() if total is None else total + v.detach()
        if world.size > 1:  # one collective for the value and every gradient
            flat = torch.cat([total.reshape(-1), *(g.reshape(-1) for g in grads)])
            all_reduce_sum(flat, world)
            sizes = [total.numel(), *(g.numel() for g in grads)]
            parts = flat.split(sizes)
            total = parts[0].reshape(total.shape)
            grads = [p.reshape(g.shape) for p, g in zip(parts[1:], grads)]
        ctx.needs = [t.requires_grad for t in inputs]
        ctx.save_for_backward(*grads)
        return total

    @staticmethod
    def backward(ctx, grad_out):
        grads = iter(ctx.saved_tensors)
        out = []
        for need in ctx.needs:
            if not need:
                out.append(None)
                continue
            g = next(grads)
            out.append(grad_out.reshape(grad_out.shape + (1,) * (g.dim() - grad_out.dim())) * g)
        return (None, None, None, *out)
