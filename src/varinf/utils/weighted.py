r"""Moments and quantiles of (importance-)weighted draws: the one helper behind the diagnostics' PSIS estimates and
the fit summary's table.

For draws ``x`` ``(S, k)`` (one column per scalar) and weights ``w`` ``(S,)`` (normalized here to sum to one):
mean :math:`\sum_s w_s x_s`, sd :math:`(\sum_s w_s (x_s - \bar x)^2)^{1/2}`, quantiles by the midpoint rule on
the weighted empirical distribution. Without weights: the plain sample mean, sd (``n - 1``) and
``torch.quantile``, so unweighted summaries are the usual ones.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["weighted_mean_sd", "weighted_quantiles"]


def _normalized(w: Tensor, like: Tensor) -> Tensor:
    w = w.to(device=like.device, dtype=like.dtype)
    return w / w.sum()


def weighted_mean_sd(x: Tensor, w: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Mean and sd of each column of ``x`` ``(S, k)``, weighted by ``w`` ``(S,)`` when given: ``((k,), (k,))``."""
    if w is None:
        return x.mean(0), x.std(0)
    w = _normalized(w, x)
    mean = w @ x
    return mean, (w @ (x - mean).square()).clamp_min(0).sqrt()


def weighted_quantiles(x: Tensor, qs: Tensor, w: Tensor | None = None) -> Tensor:
    """Quantiles ``qs`` ``(m,)`` of each column of ``x`` ``(S, k)``: ``(m, k)``; weighted by ``w`` when given (the
    weighted CDF at the sorted values' midpoints, interpolated linearly; all columns at once)."""
    if w is None:
        return torch.quantile(x.T.contiguous(), qs.to(x), dim=1)
    w = _normalized(w, x)
    S = x.shape[0]
    sx, order = torch.sort(x.T.contiguous(), dim=1)  # (k, S): sorting along contiguous rows is fast
    sw = w[order]
    cw = sw.cumsum(1) - 0.5 * sw  # midpoint rule, as for unweighted quantiles; increasing along S
    out = []
    for q in qs.tolist():
        i = torch.searchsorted(cw, torch.full((cw.shape[0], 1), q, dtype=cw.dtype, device=cw.device))
        lo, hi = (i - 1).clamp(0, S - 1), i.clamp(0, S - 1)
        c_lo, c_hi = cw.gather(1, lo)[:, 0], cw.gather(1, hi)[:, 0]
        x_lo, x_hi = sx.gather(1, lo)[:, 0], sx.gather(1, hi)[:, 0]
        t = ((q - c_lo) / (c_hi - c_lo).clamp_min(1e-300)).clamp(0, 1)
        i = i[:, 0]
        out.append(torch.where(i == 0, sx[:, 0], torch.where(i >= S, sx[:, -1], x_lo + t * (x_hi - x_lo))))
    return torch.stack(out)
