r"""Time-series posteriors from posteriordb: ``arK`` (autoregression of order K) and ``garch11``.

- ``arK``: :math:`y_t \sim N(\alpha + \sum_{k=1}^K \beta_k y_{t-k}, \sigma^2)` for :math:`t > K`;
  :math:`\alpha, \beta_k \sim N(0, 10^2)`, :math:`\sigma \sim \mathrm{Cauchy}^+(0, 2.5)`.
- ``garch11`` (Bollerslev 1986): :math:`y_t \sim N(\mu, \sigma_t^2)`, :math:`\sigma_1` given,
  :math:`\sigma_t^2 = \alpha_0 + \alpha_1 (y_{t-1} - \mu)^2 + \beta_1 \sigma_{t-1}^2`, with Stan's constraints
  :math:`\alpha_0 > 0`, :math:`0 < \alpha_1 < 1`, :math:`0 < \beta_1 < 1 - \alpha_1` and flat priors on them.

garch's upper bound on :math:`\beta_1` depends on :math:`\alpha_1`, which a per-latent support cannot
express. The model's latent is ``beta1_unit`` in (0, 1) and :math:`\beta_1 = (1-\alpha_1)\,\beta_{1,\mathrm{unit}}`;
the log joint adds the Jacobian :math:`\log|\partial\beta_1/\partial\beta_{1,\mathrm{unit}}| = \log(1-\alpha_1)`,
so the density over :math:`(\alpha_1, \beta_1)` stays Stan's flat one on the triangle.
The variance recursion is linear in :math:`\sigma_t^2` and is evaluated by a parallel scan in
:math:`\lceil\log_2 T\rceil` vectorized steps instead of a Python loop over :math:`t`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ..models import Latent
from .base import PosteriordbModel, data_int, data_vector
from .densities import half_cauchy_lp, normal_lp

__all__ = ["ArK", "Garch11", "linear_recurrence"]


class ArK(PosteriordbModel):
    """posteriordb ``arK``; latents ``alpha``, ``beta (K,)``, ``sigma`` (positive)."""

    posteriordb_name = "arK"

    def __init__(self, y: Tensor, K: int):
        if not 0 < K < y.numel():
            raise ValueError(f"arK needs 0 < K < T, got K={K}, T={y.numel()}")
        super().__init__([Latent("alpha"), Latent("beta", (K,)), Latent("sigma", (), "positive")], name="arK")
        T = y.numel()
        # lags[i, k-1] = y[t - k] for the i-th modelled time t = K + i (0-based)
        lags = torch.stack([y[K - k : T - k] for k in range(1, K + 1)], dim=1)
        self.register_buffer("lags", lags)
        self.register_buffer("target", y[K:])

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ArK:
        m = cls.posteriordb_name
        T, K = data_int(data, "T", m), data_int(data, "K", m)
        return cls(data_vector(data, "y", m, T), K)

    def log_joint(self, alpha: Tensor, beta: Tensor, sigma: Tensor) -> Tensor:
        lp = normal_lp(alpha, 0.0, 10.0) + normal_lp(beta, 0.0, 10.0).sum(-1) + half_cauchy_lp(sigma, 2.5)
        mean = alpha[..., None] + beta @ self.lags.T  # (*S, T-K)
        return lp + normal_lp(self.target, mean, sigma[..., None]).sum(-1)


def linear_recurrence(b: Tensor, a: Tensor) -> Tensor:
    r"""Solve :math:`x_t = b_t x_{t-1} + a_t` with :math:`x_0 = 0` along the last dimension ``(*S, T)``.

    Hillis–Steele inclusive scan over the affine maps :math:`x \mapsto b_t x + a_t`, composed as
    :math:`(B_2, A_2)\circ(B_1, A_1) = (B_2 B_1,\ B_2 A_1 + A_2)`; :math:`\lceil\log_2 T\rceil` steps.

    Example:
        >>> linear_recurrence(torch.full((4,), 0.5), torch.ones(4))
        tensor([1.0000, 1.5000, 1.7500, 1.8750])
    """
    B, A = torch.broadcast_tensors(b, a)
    T, off = A.shape[-1], 1
    while off < T:
        A = torch.cat([A[..., :off], B[..., off:] * A[..., :-off] + A[..., off:]], dim=-1)
        B = torch.cat([B[..., :off], B[..., off:] * B[..., :-off]], dim=-1)
        off *= 2
    return A


class Garch11(PosteriordbModel):
    """posteriordb ``garch11``; latents ``mu``, ``alpha0`` (positive), ``alpha1`` (unit interval) and
    ``beta1_unit`` (unit interval, see the module docstring); ``stan_quantities`` gives ``beta1``."""

    posteriordb_name = "garch11"
    improper_prior = True  # flat on mu and alpha0

    def __init__(self, y: Tensor, sigma1: float):
        super().__init__(
            [
                Latent("mu"),
                Latent("alpha0", (), "positive"),
                Latent("alpha1", (), "unit_interval"),
                Latent("beta1_unit", (), "unit_interval"),
            ],
            name="garch11",
        )
        if sigma1 <= 0:
            raise ValueError(f"garch11 needs sigma1 > 0, got {sigma1}")
        self.register_buffer("y", y)
        self.sigma1 = float(sigma1)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Garch11:
        m = cls.posteriordb_name
        T = data_int(data, "T", m)
        return cls(data_vector(data, "y", m, T), float(data_vector(data, "sigma1", m, 1)[0]))

    def variances(self, mu: Tensor, alpha0: Tensor, alpha1: Tensor, beta1: Tensor) -> Tensor:
        r""":math:`\sigma_t^2` ``(*S, T)``."""
        sq = (self.y[:-1] - mu[..., None]) ** 2  # (*S, T-1)
        a = alpha0[..., None] + alpha1[..., None] * sq
        first = torch.full_like(a[..., :1], self.sigma1**2)
        b = beta1[..., None].expand_as(a)
        return linear_recurrence(torch.cat([torch.zeros_like(first), b], -1), torch.cat([first, a], -1))

    def log_joint(self, mu: Tensor, alpha0: Tensor, alpha1: Tensor, beta1_unit: Tensor) -> Tensor:
        one_minus = 1 - alpha1
        beta1 = one_minus * beta1_unit
        var = self.variances(mu, alpha0, alpha1, beta1)
        return normal_lp(self.y, mu[..., None], var.sqrt()).sum(-1) + one_minus.log()

    def stan_quantities(self, z: Mapping[str, Tensor]) -> dict[str, Tensor]:
        beta1 = (1 - z["alpha1"]) * z["beta1_unit"]
        return {"mu": z["mu"], "alpha0": z["alpha0"], "alpha1": z["alpha1"], "beta1": beta1}
