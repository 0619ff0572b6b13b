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
the optimizer needs to know about processes. One chunk in one process is plain autograd.

Second order (``torch.autograd.grad(..., create_graph=True)``, ``torch.autograd.functional.hessian``, as the
Laplace start uses): the gradient returned by the backward pass is then itself differentiable, and its
backward pass gives the Hessian-vector product :math:`\sum_c \nabla^2 f_c\, v`, recomputing each chunk's
graph in turn (one chunk's double-backward graph alive at a time, so memory stays bounded here too). A third
derivative raises an error rather than come out wrong. First-order fits never take this path.
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
    Returns ``(*S,)``; differentiable in ``inputs`` (twice when chunked or distributed: gradients and
    Hessian-vector products, chunk by chunk; draw ``s`` of the result must depend only on draw ``s`` of
    ``inputs``).
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
        ctx.fn, ctx.chunks, ctx.world = fn, chunks, world
        ctx.needs = [t.requires_grad for t in inputs]
        ctx.save_for_backward(*inputs, *grads)
        return total

    @staticmethod
    def backward(ctx, grad_out):
        saved = ctx.saved_tensors
        inputs, grads = saved[: len(ctx.needs)], saved[len(ctx.needs) :]
        if torch.is_grad_enabled():  # create_graph=True (a Hessian): the gradient must depend on the inputs
            grads = _ChunkedGrad.apply(ctx.fn, ctx.chunks, ctx.world, ctx.needs, grads, *inputs)
        grads = iter(grads)
        out = []
        for need in ctx.needs:
            if not need:
                out.append(None)
                continue
            g = next(grads)
            out.append(grad_out.reshape(grad_out.shape + (1,) * (g.dim() - grad_out.dim())) * g)
        return (None, None, None, *out)


class _ChunkedGrad(torch.autograd.Function):
    r"""The gradient :math:`G(x) = \nabla_x \sum_c \mathrm{fn}(x, c)` already computed by :class:`_ChunkedSum`
    (returned as is), with a backward pass that gives the Hessian-vector product :math:`\sum_c \nabla^2
    \mathrm{fn}(x, c)\, u` chunk by chunk, so that a second derivative through the chunked sum is exact."""

    @staticmethod
    def forward(ctx, fn, chunks, world, needs, grads, *inputs):
        ctx.fn, ctx.chunks, ctx.world, ctx.needs = fn, chunks, world, needs
        ctx.save_for_backward(*inputs)
        return tuple(g.clone() for g in grads)

    @staticmethod
    def backward(ctx, *cotangents):
        create_graph = torch.is_grad_enabled()
        leaves = [t.detach().requires_grad_(need) for t, need in zip(ctx.saved_tensors, ctx.needs)]
        wants = [t for t in leaves if t.requires_grad]
        hvps = [torch.zeros_like(t) for t in wants]
        with torch.enable_grad():
            for c in ctx.chunks:
                gs = torch.autograd.grad(ctx.fn(leaves, c).sum(), wants, create_graph=True, allow_unused=True)
                dot = _sum((g * u).sum() for g, u in zip(gs, cotangents) if g is not None and g.requires_grad)
                if dot is None:  # fn is linear in the inputs: no curvature
                    continue
                for acc, h in zip(hvps, torch.autograd.grad(dot, wants, allow_unused=True)):
                    if h is not None:
                        acc.add_(h)
        if ctx.world.size > 1:
            flat = all_reduce_sum(torch.cat([h.reshape(-1) for h in hvps]), ctx.world)
            hvps = [p.reshape(h.shape) for p, h in zip(flat.split([h.numel() for h in hvps]), hvps)]
        if create_graph:  # a third derivative would come out wrong: make it an error instead
            hvps = _ThirdOrder.apply(len(hvps), *hvps, *cotangents, *ctx.saved_tensors)
        hvps = iter(hvps)
        return (None, None, None, None, None, *(next(hvps) if need else None for need in ctx.needs))


class _ThirdOrder(torch.autograd.Function):
    """Passes the first ``n`` tensors through; differentiating them (a third derivative) raises."""

    @staticmethod
    def forward(ctx, n, *tensors):
        return tuple(t.clone() for t in tensors[:n])

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(
            "third derivative through a chunked likelihood sum: not supported (gradients and Hessians are); "
            "raise Model(max_memory=...) so that the rows fit in one chunk"
        )
