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
    """Quantiles ``qs`` ``(m,)`` of each column of ``x`` ``(S, k)``: ``(m, k)``; weighted by ``w`` when given."""
    if w is None:
        return torch.quantile(x, qs.to(x), dim=0)
    w = _normalized(w, x)
    order = x.argsort(0)
    cw = w[order].cumsum(0) - 0.5 * w[order]  # midpoint rule, as for unweighted quantiles
    sorted_x = x.gather(0, order)
    cols = [(cw[:, j].contiguous(), sorted_x[:, j]) for j in range(x.shape[1])]
    return torch.stack([torch.stack([_interp(q, c, v) for c, v in cols]) for q in qs.tolist()])


def _interp(q: float, cw: Tensor, x: Tensor) -> Tensor:
    i = int(torch.searchsorted(cw, torch.tensor(q, dtype=cw.dtype)))
    if i == 0:
        return x[0]
    if i >= x.numel():
        return x[-1]
    t = (q - cw[i - 1]) / (cw[i] - cw[i - 1]).clamp_min(1e-300)
    return x[i - 1] + t * (x[i] - x[i - 1])
