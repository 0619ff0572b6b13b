r"""Gaussian linear regressions from posteriordb: ``blr``, ``kidscore_interaction``, ``kidscore_interaction_z``,
``logearn_interaction``, ``nes`` and ``diamonds``.

All but diamonds share :class:`NormalLinearModel`:
:math:`y_n \sim N(x_n^\top\beta, \sigma^2)` with a design matrix :math:`X` built from the data exactly as
the Stan program's ``transformed data`` block does, a normal or flat prior on :math:`\beta` and a
half-normal, half-Cauchy or flat prior on :math:`\sigma`. Latents: ``beta (P,)``, ``sigma`` (positive).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.distributions import StudentT

from ..models import Latent
from .base import PosteriordbModel, data_int, data_matrix, data_vector
from .densities import half_cauchy_lp, half_normal_lp, normal_lp

__all__ = [
    "Blr",
    "Diamonds",
    "KidscoreInteraction",
    "KidscoreInteractionZ",
    "LogearnInteraction",
    "Nes",
    "NormalLinearModel",
]


class NormalLinearModel(PosteriordbModel):
    r""":math:`y \sim N(X\beta, \sigma^2 I)` with configurable priors.

    Args:
        X: ``(N, P)`` design matrix; y: ``(N,)``.
        beta_scale: prior :math:`\beta_p \sim N(0, s^2)`, or None for Stan's flat prior.
        sigma_prior: ``("half_normal", s)``, ``("half_cauchy", s)`` or None (flat on :math:`\sigma>0`).
    """

    def __init__(self, X: Tensor, y: Tensor, beta_scale: float | None, sigma_prior: tuple[str, float] | None, name):
        super().__init__([Latent("beta", (X.shape[1],)), Latent("sigma", (), "positive")], name=name)
        self.register_buffer("X", X)
        self.register_buffer("y", y)
        self.beta_scale = beta_scale
        self.sigma_prior = sigma_prior

    def log_joint(self, beta: Tensor, sigma: Tensor) -> Tensor:
        lp = torch.zeros_like(sigma)
        if self.beta_scale is not None:
            lp = lp + normal_lp(beta, 0.0, self.beta_scale).sum(-1)
        if self.sigma_prior is not None:
            kind, s = self.sigma_prior
            lp = lp + (half_normal_lp(sigma, s) if kind == "half_normal" else half_cauchy_lp(sigma, s))
        mean = beta @ self.X.T  # (*S, N)
        return lp + normal_lp(self.y, mean, sigma[..., None]).sum(-1)


def _ones(n: int) -> Tensor:
    return torch.ones(n, dtype=torch.float64)


class Blr(NormalLinearModel):
    """posteriordb ``blr`` (data ``sblrc``, ``sblri``): :math:`\\beta \\sim N(0, 10^2)`, :math:`\\sigma \\sim N^+(0, 10^2)`."""

    posteriordb_name = "blr"

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Blr:
        n, d = data_int(data, "N", "blr"), data_int(data, "D", "blr")
        return cls(
            data_matrix(data, "X", "blr", (n, d)), data_vector(data, "y", "blr", n), 10.0, ("half_normal", 10.0), "blr"
        )


class KidscoreInteraction(NormalLinearModel):
    """posteriordb ``kidscore_interaction`` (data ``kidiq``): kid_score on mom_hs, mom_iq and their product;
    flat prior on beta, :math:`\\sigma \\sim` half-Cauchy(0, 2.5)."""

    posteriordb_name = "kidscore_interaction"
    improper_prior = True

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> KidscoreInteraction:
        m = cls.posteriordb_name
        n = data_int(data, "N", m)
        hs, iq = data_vector(data, "mom_hs", m, n), data_vector(data, "mom_iq", m, n)
        X = torch.stack([_ones(n), hs, iq, hs * iq], dim=1)
        return cls(X, data_vector(data, "kid_score", m, n), None, ("half_cauchy", 2.5), m)


class KidscoreInteractionZ(NormalLinearModel):
    """posteriordb ``kidscore_interaction_z`` (data ``kidiq_with_mom_work``): predictors standardized as
    :math:`(x - \\bar x) / (2\\,\\mathrm{sd}(x))` (sd with N-1, as Stan's ``sd``); flat priors."""

    posteriordb_name = "kidscore_interaction_z"
    improper_prior = True

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> KidscoreInteractionZ:
        m = cls.posteriordb_name
        n = data_int(data, "N", m)
        hs, iq = data_vector(data, "mom_hs", m, n), data_vector(data, "mom_iq", m, n)
        z_hs = (hs - hs.mean()) / (2 * hs.std())
        z_iq = (iq - iq.mean()) / (2 * iq.std())
        X = torch.stack([_ones(n), z_hs, z_iq, z_hs * z_iq], dim=1)
        return cls(X, data_vector(data, "kid_score", m, n), None, None, m)


class LogearnInteraction(NormalLinearModel):
    """posteriordb ``logearn_interaction`` (data ``earnings``): log(earn) on height, male and height*male;
    flat priors."""

    posteriordb_name = "logearn_interaction"
    improper_prior = True

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> LogearnInteraction:
        m = cls.posteriordb_name
        n = data_int(data, "N", m)
        earn = data_vector(data, "earn", m, n)
        if not bool((earn > 0).all()):
            raise ValueError(f"posteriordb data for {m!r}: 'earn' must be positive (the model takes its log)")
        height, male = data_vector(data, "height", m, n), data_vector(data, "male", m, n)
        X = torch.stack([_ones(n), height, male, height * male], dim=1)
        return cls(X, earn.log(), None, None, m)


class Nes(NormalLinearModel):
    """posteriordb ``nes`` (data ``nes1972`` ... ``nes2000``): party id on ideology, race, age dummies,
    education, gender, income; flat priors."""

    posteriordb_name = "nes"
    improper_prior = True

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Nes:
        m = cls.posteriordb_name
        n = data_int(data, "N", m)
        age = data_vector(data, "age_discrete", m, n)
        cols = [_ones(n), data_vector(data, "real_ideo", m, n), data_vector(data, "race_adj", m, n)]
        cols += [(age == a).to(age.dtype) for a in (2, 3, 4)]  # age30_44, age45_64, age65up
        cols += [data_vector(data, k, m, n) for k in ("educ1", "gender", "income")]
        return cls(torch.stack(cols, dim=1), data_vector(data, "partyid7", m, n), None, None, m)


class Diamonds(PosteriordbModel):
    r"""posteriordb ``diamonds`` (brms-generated): :math:`Y \sim N(\mathrm{Intercept} + X_c b, \sigma^2)` with
    :math:`X_c` the non-intercept columns of :math:`X` centered, :math:`b \sim N(0, 1)`,
    Intercept :math:`\sim t_3(8, 10)`, :math:`\sigma \sim t_3^+(0, 10)`. 26 latents, strongly correlated."""

    posteriordb_name = "diamonds"

    def __init__(self, Xc: Tensor, Y: Tensor):
        super().__init__(
            [Latent("b", (Xc.shape[1],)), Latent("Intercept"), Latent("sigma", (), "positive")], name="diamonds"
        )
        self.register_buffer("Xc", Xc)
        self.register_buffer("Y", Y)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Diamonds:
        m = cls.posteriordb_name
        n, k = data_int(data, "N", m), data_int(data, "K", m)
        if data_int(data, "prior_only", m):
            raise ValueError("diamonds with prior_only=1 samples the prior; only the posterior is implemented")
        X = data_matrix(data, "X", m, (n, k))
        return cls(X[:, 1:] - X[:, 1:].mean(0), data_vector(data, "Y", m, n))

    def log_joint(self, b: Tensor, Intercept: Tensor, sigma: Tensor) -> Tensor:
        df, zero = torch.tensor(3.0, dtype=b.dtype), torch.tensor(0.0, dtype=b.dtype)
        lp = normal_lp(b, 0.0, 1.0).sum(-1)
        lp = lp + StudentT(df, zero + 8.0, zero + 10.0, validate_args=False).log_prob(Intercept)
        # half Student-t: Stan subtracts student_t_lccdf(0 | 3, 0, 10) = log(1/2)
        lp = lp + StudentT(df, zero, zero + 10.0, validate_args=False).log_prob(sigma) + torch.log(zero + 2.0)
        mean = Intercept[..., None] + b @ self.Xc.T
        return lp + normal_lp(self.Y, mean, sigma[..., None]).sum(-1)
