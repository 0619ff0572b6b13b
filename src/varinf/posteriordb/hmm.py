r"""Two-state hidden Markov models from posteriordb: ``hmm_example`` and ``hmm_drive_0``.

Both marginalize the hidden states with the forward algorithm, as the Stan programs do:

.. math::
    \gamma_1(k) = e_1(k),\qquad \gamma_t(k) = \log\sum_j \exp\big(\gamma_{t-1}(j) + \log\Theta_{jk}\big) + e_t(k),
    \qquad \log p(y\mid\cdot) = \log\sum_k \exp\gamma_N(k),

with :math:`e_t(k)` the emission log density (no initial-state distribution, as in the Stan code). The
recursion is a product of :math:`(K\times K)` matrices in the log semiring, evaluated here by pairwise
(tree) reduction: :math:`\lceil\log_2 N\rceil` vectorized steps instead of a loop over :math:`t`.

Transition rows ``theta1``, ``theta2`` are ``simplex`` latents and the emission parameters
``positive_ordered`` latents (the core's supports: stick-breaking and :math:`\exp` of an ordered vector);
flat priors on the simplexes are the uniform Dirichlet, normalized (:math:`\log\Gamma(K)`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Dirichlet

from ..models import Latent
from .base import PosteriordbModel, data_int, data_matrix, data_vector
from .densities import normal_lp

__all__ = ["HMMDrive0", "HMMExample", "hmm_log_likelihood"]


def hmm_log_likelihood(log_trans: Tensor, log_emit: Tensor) -> Tensor:
    """Forward algorithm by tree reduction.

    Args:
        log_trans: ``(*S, K, K)``, ``[j, k] = log P(next = k | current = j)``.
        log_emit: ``(*S, N, K)`` emission log densities.

    Returns:
        ``(*S,)`` :math:`\\log\\sum_k \\exp\\gamma_N(k)` (initial weights 1, as in the posteriordb programs).
    """
    # M_t[j, k] = log Theta[j, k] + e_t(k) for t = 2..N; gamma_N = gamma_1 (x) M_2 (x) ... (x) M_N
    M = log_trans.unsqueeze(-3) + log_emit[..., 1:, None, :]  # (*S, N-1, K, K)
    while M.shape[-3] > 1:
        n = M.shape[-3]
        even = n - n % 2
        P, Q = M[..., 0:even:2, :, :], M[..., 1:even:2, :, :]
        R = torch.logsumexp(P.unsqueeze(-1) + Q.unsqueeze(-3), dim=-2)  # [j, m] + [m, k], summed over m
        M = torch.cat([R, M[..., even:, :, :]], dim=-3)
    gamma1 = log_emit[..., 0, :]
    if M.shape[-3] == 0:
        return torch.logsumexp(gamma1, -1)
    gammaN = torch.logsumexp(gamma1.unsqueeze(-1) + M[..., 0, :, :], dim=-2)
    return torch.logsumexp(gammaN, -1)


def _two_states(data: Mapping[str, Any], model: str) -> int:
    K = data_int(data, "K", model)
    if K != 2:
        raise ValueError(f"{model}: the Stan program puts priors on exactly two states; got K={K}")
    return K


class HMMExample(PosteriordbModel):
    """posteriordb ``hmm_example``: :math:`y_t \\sim N(\\mu_{z_t}, 1)`, :math:`\\mu_1 \\sim N(3,1)`,
    :math:`\\mu_2 \\sim N(10,1)`, uniform transition rows."""

    posteriordb_name = "hmm_example"

    def __init__(self, y: Tensor, K: int = 2):
        super().__init__(
            [
                Latent("theta1", (K,), "simplex"),
                Latent("theta2", (K,), "simplex"),
                Latent("mu", (K,), "positive_ordered"),
            ],
            name="hmm_example",
        )
        self.register_buffer("y", y)
        self.log_uniform_simplex = math.lgamma(K)  # Dirichlet(1, ..., 1) density on the simplex

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> HMMExample:
        m = cls.posteriordb_name
        K, N = _two_states(data, m), data_int(data, "N", m)
        return cls(data_vector(data, "y", m, N), K)

    def log_joint(self, theta1: Tensor, theta2: Tensor, mu: Tensor) -> Tensor:
        lp = 2 * self.log_uniform_simplex + normal_lp(mu[..., 0], 3.0, 1.0) + normal_lp(mu[..., 1], 10.0, 1.0)
        log_trans = torch.stack([theta1, theta2], dim=-2).log()
        log_emit = normal_lp(self.y[:, None], mu[..., None, :], 1.0)  # (*S, N, K)
        return lp + hmm_log_likelihood(log_trans, log_emit)


class HMMDrive0(PosteriordbModel):
    """posteriordb ``hmm_drive_0`` (basketball drives): exponential emissions for 1/speed ``u`` (rate
    :math:`\\phi_k`) and hoop distance ``v`` (rate :math:`\\lambda_k`); Dirichlet(``alpha[k]``) transition rows;
    :math:`\\phi_1, \\lambda_1 \\sim N(0,1)`, :math:`\\phi_2, \\lambda_2 \\sim N(3,1)`."""

    posteriordb_name = "hmm_drive_0"

    def __init__(self, u: Tensor, v: Tensor, alpha: Tensor):
        K = alpha.shape[0]
        super().__init__(
            [
                Latent("theta1", (K,), "simplex"),
                Latent("theta2", (K,), "simplex"),
                Latent("phi", (K,), "positive_ordered"),
                Latent("lambda_", (K,), "positive_ordered"),  # `lambda` is a Python keyword
            ],
            name="hmm_drive_0",
        )
        self.register_buffer("u", u)
        self.register_buffer("v", v)
        self.register_buffer("alpha", alpha)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> HMMDrive0:
        m = cls.posteriordb_name
        K, N = _two_states(data, m), data_int(data, "N", m)
        alpha = data_matrix(data, "alpha", m, (K, K))
        if not bool((alpha > 0).all()):
            raise ValueError(f"posteriordb data for {m!r}: Dirichlet concentrations 'alpha' must be positive")
        return cls(data_vector(data, "u", m, N), data_vector(data, "v", m, N), alpha)

    def log_joint(self, theta1: Tensor, theta2: Tensor, phi: Tensor, lambda_: Tensor) -> Tensor:
        alpha = self.alpha.to(theta1.dtype)
        lp = Dirichlet(alpha[0], validate_args=False).log_prob(theta1)
        lp = lp + Dirichlet(alpha[1], validate_args=False).log_prob(theta2)
        lp = lp + normal_lp(phi[..., 0], 0.0, 1.0) + normal_lp(phi[..., 1], 3.0, 1.0)
        lp = lp + normal_lp(lambda_[..., 0], 0.0, 1.0) + normal_lp(lambda_[..., 1], 3.0, 1.0)
        log_trans = torch.stack([theta1, theta2], dim=-2).log()
        # exponential_lpdf(u | phi) = log phi - phi u, and the same for v with lambda
        phi_, lam_ = phi[..., None, :], lambda_[..., None, :]
        log_emit = phi_.log() - phi_ * self.u[:, None] + lam_.log() - lam_ * self.v[:, None]
        return lp + hmm_log_likelihood(log_trans, log_emit)

    def stan_quantities(self, z: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {"theta1": z["theta1"], "theta2": z["theta2"], "phi": z["phi"], "lambda": z["lambda_"]}
