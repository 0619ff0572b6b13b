r"""Gaussian-process posteriors from posteriordb (data ``gp_pois_regr``): ``gp_pois_regr`` and ``gp_regr``.

Kernel (Stan's ``gp_exp_quad_cov``): :math:`K_{ij} = \alpha^2 \exp(-(x_i - x_j)^2 / (2\rho^2))`.
Priors: :math:`\rho \sim \mathrm{Gamma}(25, 4)` (shape, rate), :math:`\alpha \sim N^+(0, 2^2)`.

- ``gp_pois_regr``: :math:`f = L\tilde f`, :math:`LL^\top = K + 10^{-10} I`, :math:`\tilde f \sim N(0, I)`,
  :math:`k_n \sim \mathrm{Poisson}(e^{f_n})`. Latents ``rho``, ``alpha``, ``f_tilde (N,)``; the reference
  reports ``rho, alpha, f[1..N]`` (``f`` is a transformed parameter).
- ``gp_regr``: :math:`y \sim N(0, K + \sigma I)` (Stan adds :math:`\sigma`, not :math:`\sigma^2`, to the
  diagonal), :math:`\sigma \sim N^+(0, 1)`. Latents ``rho``, ``alpha``, ``sigma``.

The kernel matrix is nearly singular (smooth kernel, :math:`\rho` several times the grid spacing), so its
Cholesky factor is always computed in float64 (then cast back) even when the model runs in float32.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Gamma, MultivariateNormal

from ..models import Latent
from .base import PosteriordbModel, data_int, data_vector
from .densities import half_normal_lp, normal_lp

__all__ = ["GPPoisRegr", "GPRegr", "exp_quad_cov"]


def exp_quad_cov(x: Tensor, alpha: Tensor, rho: Tensor) -> Tensor:
    """``(*S, N, N)`` squared-exponential covariance for inputs ``x (N,)`` and ``alpha, rho (*S,)``."""
    d2 = (x[:, None] - x[None, :]) ** 2
    return alpha[..., None, None] ** 2 * torch.exp(-d2 / (2 * rho[..., None, None] ** 2))


def _cholesky64(K: Tensor) -> Tensor:
    L, info = torch.linalg.cholesky_ex(K.double())
    if bool((info > 0).any()):
        # a failed factorization would silently give garbage; NaN makes the bound non-finite instead,
        # which fit() handles by stepping back
        L = torch.where((info > 0)[..., None, None], torch.full_like(L, float("nan")), L)
    return L


def _rho_alpha_lp(rho: Tensor, alpha: Tensor) -> Tensor:
    conc, rate = torch.tensor(25.0, dtype=rho.dtype), torch.tensor(4.0, dtype=rho.dtype)
    return Gamma(conc, rate, validate_args=False).log_prob(rho) + half_normal_lp(alpha, 2.0)


class GPPoisRegr(PosteriordbModel):
    """posteriordb ``gp_pois_regr``: latent GP with Poisson counts."""

    posteriordb_name = "gp_pois_regr"

    def __init__(self, x: Tensor, k: Tensor):
        super().__init__(
            [Latent("rho", (), "positive"), Latent("alpha", (), "positive"), Latent("f_tilde", (x.numel(),))],
            name="gp_pois_regr",
        )
        if not bool(((k >= 0) & (k == k.round())).all()):
            raise ValueError("gp_pois_regr: counts 'k' must be non-negative integers")
        self.register_buffer("x", x)
        self.register_buffer("k", k)
        self.register_buffer("log_k_factorial", torch.lgamma(k + 1))

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> GPPoisRegr:
        m = cls.posteriordb_name
        n = data_int(data, "N", m)
        return cls(data_vector(data, "x", m, n), data_vector(data, "k", m, n))

    def f(self, rho: Tensor, alpha: Tensor, f_tilde: Tensor) -> Tensor:
        """The transformed parameter :math:`f = L\\tilde f` ``(*S, N)``."""
        K = exp_quad_cov(self.x, alpha, rho) + 1e-10 * torch.eye(self.x.numel(), dtype=rho.dtype)
        L = _cholesky64(K)
        return (L @ f_tilde.double()[..., None]).squeeze(-1).to(f_tilde.dtype)

    def log_joint(self, rho: Tensor, alpha: Tensor, f_tilde: Tensor) -> Tensor:
        f = self.f(rho, alpha, f_tilde)
        lik = (self.k * f - f.exp() - self.log_k_factorial).sum(-1)  # Poisson with log rate f
        return _rho_alpha_lp(rho, alpha) + normal_lp(f_tilde, 0.0, 1.0).sum(-1) + lik

    def stan_quantities(self, z: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {"rho": z["rho"], "alpha": z["alpha"], "f": self.f(z["rho"], z["alpha"], z["f_tilde"])}


class GPRegr(PosteriordbModel):
    """posteriordb ``gp_regr``: GP regression with the marginal likelihood in closed form."""

    posteriordb_name = "gp_regr"

    def __init__(self, x: Tensor, y: Tensor):
        super().__init__(
            [Latent("rho", (), "positive"), Latent("alpha", (), "positive"), Latent("sigma", (), "positive")],
            name="gp_regr",
        )
        self.register_buffer("x", x)
        self.register_buffer("y", y)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> GPRegr:
        m = cls.posteriordb_name
        n = data_int(data, "N", m)
        return cls(data_vector(data, "x", m, n), data_vector(data, "y", m, n))

    def log_joint(self, rho: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        n = self.x.numel()
        K = exp_quad_cov(self.x, alpha, rho) + sigma[..., None, None] * torch.eye(n, dtype=rho.dtype)
        L = _cholesky64(K)
        y = self.y.double()
        lik = MultivariateNormal(torch.zeros_like(y), scale_tril=L, validate_args=False).log_prob(y)
        return _rho_alpha_lp(rho, alpha) + half_normal_lp(sigma, 1.0) + lik.to(rho.dtype)
