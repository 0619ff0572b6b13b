r"""posteriordb ``low_dim_gauss_mix``: a two-component Gaussian mixture with ordered means.

.. math::
    y_n \sim \theta\,N(\mu_1, \sigma_1^2) + (1-\theta)\,N(\mu_2, \sigma_2^2),\quad
    \mu_1 < \mu_2,\ \mu_k \sim N(0, 2^2),\ \sigma_k \sim N^+(0, 2^2),\ \theta \sim \mathrm{Beta}(5, 5).

The ordering removes label switching; the prior on the ordered pair is normalized (factor 2: the
ordered region holds half the mass of two independent normals). Latents ``mu (2,)`` (ordered),
``sigma (2,)`` (positive), ``theta`` (unit interval) — the names the reference uses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Beta

from ..models import Latent
from .base import PosteriordbModel, data_int, data_vector
from .densities import half_normal_lp, normal_lp

__all__ = ["LowDimGaussMix"]


class LowDimGaussMix(PosteriordbModel):
    """posteriordb ``low_dim_gauss_mix``."""

    posteriordb_name = "low_dim_gauss_mix"

    def __init__(self, y: Tensor):
        super().__init__(
            [Latent("mu", (2,), "ordered"), Latent("sigma", (2,), "positive"), Latent("theta", (), "unit_interval")],
            name="low_dim_gauss_mix",
        )
        self.register_buffer("y", y)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> LowDimGaussMix:
        m = cls.posteriordb_name
        n = data_int(data, "N", m)
        return cls(data_vector(data, "y", m, n))

    def log_joint(self, mu: Tensor, sigma: Tensor, theta: Tensor) -> Tensor:
        five = torch.tensor(5.0, dtype=theta.dtype)
        lp = half_normal_lp(sigma, 2.0).sum(-1) + normal_lp(mu, 0.0, 2.0).sum(-1) + math.log(2.0)
        lp = lp + Beta(five, five, validate_args=False).log_prob(theta)
        y = self.y
        # log_mix(theta, a, b) = logsumexp(log theta + a, log(1 - theta) + b); logit form keeps it stable
        logit = torch.logit(theta)[..., None]
        a = F.logsigmoid(logit) + normal_lp(y, mu[..., :1], sigma[..., :1])
        b = F.logsigmoid(-logit) + normal_lp(y, mu[..., 1:], sigma[..., 1:])
        return lp + torch.logaddexp(a, b).sum(-1)
