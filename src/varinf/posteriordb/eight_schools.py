r"""Eight schools (Rubin 1981; BDA3 §5.5), centered and non-centered, as posteriordb writes them.

Both: :math:`\mu \sim N(0, 5^2)`, :math:`\tau \sim \mathrm{Cauchy}^+(0, 5)`, :math:`y_j \sim N(\theta_j, \sigma_j^2)`.

- centered: :math:`\theta_j \sim N(\mu, \tau^2)`; latents ``theta (J,)``, ``mu``, ``tau``. The posterior is a
  funnel in :math:`(\theta, \log\tau)`: a hard case for Gaussian families.
- non-centered: :math:`\tilde\theta_j \sim N(0, 1)`, :math:`\theta_j = \mu + \tau\tilde\theta_j` (a transformed
  parameter); latents ``theta_trans (J,)``, ``mu``, ``tau``.

The reference (posteriordb ``eight_schools-eight_schools_noncentered``, used for both) reports
``theta[1..J], mu, tau``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from ..models import Latent
from .base import PosteriordbModel, data_int, data_vector
from .densities import half_cauchy_lp, normal_lp

__all__ = ["EightSchoolsCentered", "EightSchoolsNoncentered"]


def _data(data: Mapping[str, Any], model: str) -> tuple[Tensor, Tensor]:
    J = data_int(data, "J", model)
    y, sigma = data_vector(data, "y", model, J), data_vector(data, "sigma", model, J)
    if not bool((sigma > 0).all()):
        raise ValueError(f"posteriordb data for {model!r}: 'sigma' must be positive")
    return y, sigma


class EightSchoolsCentered(PosteriordbModel):
    """posteriordb ``eight_schools_centered``."""

    posteriordb_name = "eight_schools_centered"

    def __init__(self, y: Tensor, sigma: Tensor):
        J = y.numel()
        super().__init__(
            [Latent("theta", (J,)), Latent("mu"), Latent("tau", (), "positive")], name="eight_schools_centered"
        )
        self.register_buffer("y", y)
        self.register_buffer("sigma", sigma)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> EightSchoolsCentered:
        return cls(*_data(data, cls.posteriordb_name))

    def log_joint(self, theta: Tensor, mu: Tensor, tau: Tensor) -> Tensor:
        lp = half_cauchy_lp(tau, 5.0) + normal_lp(mu, 0.0, 5.0)
        lp = lp + normal_lp(theta, mu[..., None], tau[..., None]).sum(-1)
        return lp + normal_lp(self.y, theta, self.sigma).sum(-1)


class EightSchoolsNoncentered(PosteriordbModel):
    """posteriordb ``eight_schools_noncentered``; ``stan_quantities`` adds the transformed ``theta``."""

    posteriordb_name = "eight_schools_noncentered"

    def __init__(self, y: Tensor, sigma: Tensor):
        J = y.numel()
        super().__init__(
            [Latent("theta_trans", (J,)), Latent("mu"), Latent("tau", (), "positive")],
            name="eight_schools_noncentered",
        )
        self.register_buffer("y", y)
        self.register_buffer("sigma", sigma)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> EightSchoolsNoncentered:
        return cls(*_data(data, cls.posteriordb_name))

    @staticmethod
    def theta(theta_trans: Tensor, mu: Tensor, tau: Tensor) -> Tensor:
        return theta_trans * tau[..., None] + mu[..., None]

    def log_joint(self, theta_trans: Tensor, mu: Tensor, tau: Tensor) -> Tensor:
        lp = normal_lp(theta_trans, 0.0, 1.0).sum(-1)
        lp = lp + normal_lp(self.y, self.theta(theta_trans, mu, tau), self.sigma).sum(-1)
        return lp + normal_lp(mu, 0.0, 5.0) + half_cauchy_lp(tau, 5.0)

    def stan_quantities(self, z: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {"theta": self.theta(z["theta_trans"], z["mu"], z["tau"]), "mu": z["mu"], "tau": z["tau"]}
