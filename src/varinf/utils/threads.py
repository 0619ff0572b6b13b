"""Torch's intra-op thread count, set for a block and restored after it.

Why a block and not a global: coding must run one thread (oneDNN's summation order depends on the thread
count, and a file must decode to the same pixels whatever the caller set), and small fits are faster on one
thread on a shared machine; neither may leave the caller's process changed.

Example::

    >>> import torch
    >>> from varinf.utils import num_threads
    >>> before = torch.get_num_threads()
    >>> with num_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch

__all__ = ["blas_threads", "num_threads"]


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """``torch.set_num_threads(n)`` inside the block, the previous count after it; ``None`` changes nothing."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


@functools.cache
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # optional: without it numpy's BLAS keeps its own thread count
        return None
    return ThreadpoolController()


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """numpy's BLAS (OpenBLAS, MKL) limited to ``n`` threads inside the block (threadpoolctl, when installed).

    Why: the integer networks of the codecs multiply small matrices; a multi-threaded BLAS wakes its threads for
    each of them, which on a loaded machine costs far more than the product (and its spinning threads count as
    CPU time). The results are exact integers either way."""
    controller = None if n is None else _blas_controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=int(n), user_api="blas"):
        yield
