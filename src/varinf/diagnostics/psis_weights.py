r"""Pareto-smoothed importance sampling of q towards the posterior, and what :math:`\hat k` means.

With draws :math:`z_s \sim q` and ratios :math:`r_s = p(x, z_s) / q(z_s)`, PSIS fits a generalized Pareto
distribution to the largest ratios and replaces them by its quantiles (Vehtari et al. 2024,
arXiv:1507.02646). The fitted shape :math:`\hat k` estimates how heavy the ratios' right tail is: the
ratios have :math:`\lfloor 1/k \rfloor` finite moments. Yao et al. 2018 ("Yes, but did it work?",
arXiv:1802.02538) use it to judge a variational fit:

==================  =======================================================================================
:math:`\hat k`      meaning for q
==================  =======================================================================================
< 0.5               ratios have finite variance: q is close to the posterior; plain and PSIS-corrected
                    estimates are reliable.
0.5 – threshold     finite mean, infinite variance: q is usable, PSIS-corrected estimates converge, but
                    check them (more draws, richer family).
> threshold         q misses mass the posterior has; estimates from q (and even PSIS) are unreliable.
> 1                 the ratios have no finite mean: even the evidence estimate is meaningless.
==================  =======================================================================================

The threshold is :math:`\min(1 - 1/\log_{10} S,\ 0.7)` (Vehtari et al. 2024, §3): with fewer draws,
PSIS can be trusted only for smaller :math:`\hat k` (0.7 once :math:`S \geq 2200`).

The smoothing is :func:`.pareto.pareto_smooth` (the same computation as ArviZ's ``psislw``, without ArviZ's
start-up cost).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .pareto import pareto_smooth

__all__ = ["KHAT_GOOD", "KHAT_MAX", "PSISResult", "khat_threshold", "khat_verdict", "psis"]

KHAT_GOOD = 0.5
KHAT_MAX = 0.7


def khat_threshold(num_draws: int) -> float:
    r"""Sample-size dependent :math:`\hat k` threshold :math:`\min(1 - 1/\log_{10} S, 0.7)`."""
    if num_draws < 2:
        return -math.inf
    return min(1.0 - 1.0 / math.log10(num_draws), KHAT_MAX)


def khat_verdict(khat: float, num_draws: int) -> str:
    """One of ``"good"``, ``"ok"``, ``"bad"``, ``"very bad"`` or ``"unknown"`` (NaN: the tail fit failed)."""
    if math.isnan(khat):
        return "unknown"
    if khat < KHAT_GOOD:
        return "good"
    if khat <= khat_threshold(num_draws):
        return "ok"
    return "bad" if khat <= 1.0 else "very bad"


@dataclass(frozen=True)
class PSISResult:
    r"""Pareto-smoothed importance weights for ``S`` draws of q.

    Attributes:
        khat: Pareto shape estimate :math:`\hat k` (``inf`` when the tail has too few draws to fit).
        log_weights: ``(S,)`` raw :math:`\log p(x,z_s) - \log q(z_s)` (nats, float64).
        smoothed_log_weights: ``(S,)`` smoothed, self-normalized: :math:`\sum_s e^{\cdot} = 1`.
        ess: effective sample size of the smoothed weights, :math:`1/\sum_s \tilde w_s^2`.
        threshold: :func:`khat_threshold` for ``S``.
    """

    khat: float
    log_weights: Tensor = field(repr=False)
    smoothed_log_weights: Tensor = field(repr=False)
    ess: float
    threshold: float

    @property
    def num_draws(self) -> int:
        return int(self.log_weights.shape[0])

    @property
    def verdict(self) -> str:
        return khat_verdict(self.khat, self.num_draws)

    @property
    def weights(self) -> Tensor:
        """``(S,)`` normalized smoothed weights :math:`\\tilde w_s`."""
        return self.smoothed_log_weights.exp()


def psis(log_weights: Tensor) -> PSISResult:
    r"""Pareto-smooth log importance ratios ``(S,)``; non-finite entries must be ``-inf`` (zero weight).

    Example:
        >>> import torch
        >>> r = psis(torch.randn(4000, dtype=torch.float64) * 0.3)  # light-tailed ratios
        >>> r.khat < 0.5, r.verdict
        (True, 'good')
    """
    lw = torch.as_tensor(log_weights).detach().to("cpu", torch.float64).flatten()
    if torch.isnan(lw).any() or (lw == math.inf).any():
        raise ValueError("log weights contain NaN or +inf; map failed evaluations to -inf before smoothing")
    if not torch.isfinite(lw).any():
        raise ValueError("every log weight is -inf: the model's log density is -inf wherever q puts mass")
    S = lw.numel()
    finite = lw[torch.isfinite(lw)]
    # equal up to the rounding of the log densities, and at most 1e-6 nats apart whatever their size (a diverged
    # q has log weights near -1e28 whose spread of 1e15 nats is still "small" relative to them)
    tol = min(1e-6, 1e-10 * max(1.0, float(finite.abs().max())))
    if finite.numel() == S and float(finite.max() - finite.min()) <= tol:
        # all ratios equal (the proposal is the posterior): no tail at all, every draw counts
        return PSISResult(-math.inf, lw, torch.full_like(lw, -math.log(S)), float(S), khat_threshold(S))
    smoothed, khat = pareto_smooth(lw)
    ess = 1.0 / torch.exp(torch.logsumexp(2 * smoothed, 0)).item()
    return PSISResult(khat, lw, smoothed, ess, khat_threshold(S))
