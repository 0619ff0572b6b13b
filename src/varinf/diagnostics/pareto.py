r"""Pareto smoothing of importance ratios (Vehtari, Simpson, Gelman, Yao & Gabry 2024, arXiv:1507.02646), in torch.

The largest :math:`M = \lceil\min(S/5,\ 3\sqrt S)\rceil` log ratios form the tail. Their exceedances over the
cut-off, :math:`e_i = w_i - w_{\mathrm{cut}}`, get a generalized Pareto fit by the empirical-Bayes method of
Zhang & Stephens (2009, Technometrics 51:316): with :math:`\theta = -k/\sigma`, the profile log likelihood
:math:`\ell(\theta) = n(\log(-\theta/k(\theta)) - k(\theta) - 1)`, :math:`k(\theta) = \frac1n\sum_i \log(1-\theta e_i)`,
is averaged over a grid of :math:`m = 30 + \lfloor\sqrt n\rfloor` values of :math:`\theta` (posterior mean under a
flat prior on the grid); :math:`\hat k` is then shrunk towards 0.5 by a weakly informative prior worth 10
observations. The tail ratios are replaced by the fitted distribution's quantiles at
:math:`(i - \tfrac12)/M` (never above the largest raw ratio).

This is the computation ArviZ's ``psislw`` does (the tests check they agree to rounding), without importing
ArviZ, whose start-up (about 1.5 s) would dominate a small fit's diagnostics. ``reff`` = 1: the draws of q are
independent.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["gpd_fit", "pareto_smooth"]

_PRIOR_K, _PRIOR_WEIGHT = 0.5, 10.0


def gpd_fit(e: Tensor) -> tuple[float, float]:
    r"""Generalized Pareto ``(k, sigma)`` for sorted positive exceedances ``e`` ``(n,)`` (float64), Zhang & Stephens
    (2009) with Vehtari et al.'s prior on ``k``."""
    n = e.numel()
    m = 30 + int(math.sqrt(n))
    j = torch.arange(1, m + 1, dtype=e.dtype, device=e.device)
    quartile = e[int(n / 4 + 0.5) - 1]
    theta = 1.0 / e[-1] + (1.0 - torch.sqrt(m / (j - 0.5))) / (3.0 * quartile)
    k_theta = torch.log1p(-theta[:, None] * e).mean(1)
    loglik = n * (torch.log(-theta / k_theta) - k_theta - 1.0)
    weight = 1.0 / torch.exp(loglik[None, :] - loglik[:, None]).sum(1)  # normalized posterior weights on the grid
    keep = weight >= 10 * torch.finfo(e.dtype).eps
    weight, theta = weight[keep], theta[keep]
    theta_hat = (theta * weight).sum() / weight.sum()
    k = torch.log1p(-theta_hat * e).mean()
    sigma = (-k / theta_hat).item()
    k = (n * k.item() + _PRIOR_WEIGHT * _PRIOR_K) / (n + _PRIOR_WEIGHT)
    return k, sigma


def _gpd_quantile(p: Tensor, k: float, sigma: float) -> Tensor:
    if abs(k) < torch.finfo(p.dtype).eps:
        return -sigma * torch.log1p(-p)
    return sigma * torch.expm1(-k * torch.log1p(-p)) / k


def pareto_smooth(log_weights: Tensor) -> tuple[Tensor, float]:
    """``(smoothed, khat)``: Pareto-smoothed log ratios normalized to sum to one in probability, and :math:`\\hat k`
    (``inf`` when the tail has at most 4 draws). ``log_weights``: ``(S,)`` float64, ``-inf`` allowed."""
    x = log_weights.detach().to(torch.float64).clone()
    S = x.numel()
    x = x - x.max()
    order = torch.argsort(x)
    tail_len = math.ceil(min(S / 5.0, 3.0 * math.sqrt(S)))
    cut = max(x[order[S - tail_len - 1]].item(), math.log(torch.finfo(torch.float64).tiny))
    tail = (x > cut).nonzero().squeeze(-1)
    k = math.inf
    if tail.numel() > 4:
        tail = tail[torch.argsort(x[tail])]
        exceed = torch.exp(x[tail]) - math.exp(cut)
        k, sigma = gpd_fit(exceed)
        if math.isfinite(k) and sigma > 0:
            n = tail.numel()
            p = (torch.arange(n, dtype=x.dtype) + 0.5) / n
            x[tail] = torch.log(_gpd_quantile(p, k, sigma) + math.exp(cut)).clamp_max(0.0)
    return x - torch.logsumexp(x, 0), k
