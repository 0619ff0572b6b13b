r"""k-means (k-means++ seeding + Lloyd iterations) in torch, used to initialize mixture responsibilities.

Arthur & Vassilvitskii (2007) seeding: each new center is drawn with probability proportional to the
squared distance to the nearest chosen center; then Lloyd's algorithm until the centers move less than
``tol`` times the mean per-feature variance (the scikit-learn criterion) or ``max_iter``.

Example::

    >>> import torch
    >>> x = torch.cat([torch.randn(50, 2) - 5, torch.randn(50, 2) + 5])
    >>> labels = kmeans(x, 2, torch.Generator().manual_seed(0))
    >>> int(labels[:50].unique().numel()), int(labels[50:].unique().numel())
    (1, 1)
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["kmeans", "kmeans_plus_plus"]


def _sq_dist(x: Tensor, x_sq: Tensor, centers: Tensor) -> Tensor:
    """``(N, K)`` squared Euclidean distances via ``|x|^2 - 2 x.c + |c|^2`` (one GEMM)."""
    return (x_sq[:, None] - 2 * x @ centers.T + (centers * centers).sum(-1)).clamp_min(0)


def kmeans_plus_plus(x: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """``k`` seed centers ``(k, D)`` chosen among the rows of ``x`` (``(N, D)``)."""
    n = x.shape[0]
    x_sq = (x * x).sum(-1)
    first = int(torch.randint(n, (1,), generator=generator))
    centers = [x[first]]
    closest = _sq_dist(x, x_sq, x[first : first + 1]).squeeze(-1)
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # fewer distinct points than k: repeat a point
            idx = int(torch.randint(n, (1,), generator=generator))
        else:
            u = torch.rand((), generator=generator, dtype=torch.float64).item() * float(total)
            idx = min(int(torch.searchsorted(torch.cumsum(closest.double(), 0).cpu(), u)), n - 1)
        centers.append(x[idx])
        closest = torch.minimum(closest, _sq_dist(x, x_sq, x[idx : idx + 1]).squeeze(-1))
    return torch.stack(centers)


def kmeans(x: Tensor, k: int, generator: torch.Generator, max_iter: int = 100, tol: float = 1e-4) -> Tensor:
    """Cluster labels ``(N,)`` (int64) of ``x`` (``(N, D)``) into ``k`` clusters."""
    centers = kmeans_plus_plus(x, k, generator)
    x_sq = (x * x).sum(-1)
    threshold = tol * float(x.var(0).mean())
    labels = _sq_dist(x, x_sq, centers).argmin(-1)
    for _ in range(max_iter):
        counts = torch.bincount(labels, minlength=k).to(x.dtype)
        sums = torch.zeros_like(centers).index_add_(0, labels, x)
        # an emptied cluster keeps its old center
        new = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centers)
        shift = float(((new - centers) ** 2).sum())
        centers = new
        labels = _sq_dist(x, x_sq, centers).argmin(-1)
        if shift <= threshold:
            break
    return labels
