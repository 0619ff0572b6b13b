r"""Two-state hidden Markov models from posteriordb: ``hmm_example`` and ``hmm_drive_0``.

Both marginalize the hidden states with the forward algorithm, as the Stan programs do:

.. math::
    \gamma_1(k) = e_1(k),\qquad \gamma_t(k) = \log\sum_j \exp\big(\gamma_{t-1}(j) + \log\Theta_{jk}\big) + e_t(k),
    \qquad \log p(y\mid\cdot) = \log\sum_k \exp\gamma_N(k),

with :math:`e_t(k)` the emission log density (no initial-state distribution, as in the Stan code). The
recursion is a product of :math:`(K\times K)` matrices in the log semiring, evaluated here by pairwise
(tree) reduction: :math:`\lceil\log_2 N\rceil` vectorized steps instead of a loop over :math:`t`.

Transition rows ``theta1``, ``theta2`` are simplexes and the emission parameters are ``positive_ordered``.
The model's latents are unconstrained (``theta1_raw (K-1,)``, ..., ``mu_raw (K,)``) and mapped inside the
log joint with explicit Jacobians: ``torch``'s stick-breaking transform for simplexes and Stan's
``positive_ordered`` map :math:`y_k = \sum_{i\le k} e^{x_i}`. ``stan_quantities`` returns the Stan-named
constrained values the reference reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Dirichlet, StickBreakingTransform

from ..models import Latent
from .base import PosteriordbModel, data_int, data_matrix, data_vector
from .densities import normal_lp

__all__ = ["HMMDrive0", "HMMExample", "hmm_log_likelihood", "positive_ordered", "stick_breaking"]


def stick_breaking(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(*S, K-1)`` -> simplex ``(*S, K)`` and :math:`\\log|\\det J|` ``(*S,)`` (torch's ``StickBreakingTransform``)."""
    t = StickBreakingTransform()
    y = t(x)
    return y, t.log_abs_det_jacobian(x, y)


def positive_ordered(x: Tensor) -> tuple[Tensor, Tensor]:
    r"""Stan's ``positive_ordered`` map :math:`y_k = \sum_{i\le k} e^{x_i}` and :math:`\log|\det J| = \sum_k x_k`
    (the Jacobian is lower triangular with diagonal :math:`e^{x_k}`)."""
    return x.exp().cumsum(-1), x.sum(-1)


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
            [Latent("theta1_raw", (K - 1,)), Latent("theta2_raw", (K - 1,)), Latent("mu_raw", (K,))],
            name="hmm_example",
        )
        self.register_buffer("y", y)
        self.log_uniform_simplex = math.lgamma(K)  # Dirichlet(1, ..., 1) density on the simplex

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> HMMExample:
        m = cls.posteriordb_name
        K, N = _two_states(data, m), data_int(data, "N", m)
        return cls(data_vector(data, "y", m, N), K)

    def _constrained(self, z: Mapping[str, Tensor]):
        t1, j1 = stick_breaking(z["theta1_raw"])
        t2, j2 = stick_breaking(z["theta2_raw"])
        mu, j3 = positive_ordered(z["mu_raw"])
        return t1, t2, mu, j1 + j2 + j3

    def log_joint(self, theta1_raw: Tensor, theta2_raw: Tensor, mu_raw: Tensor) -> Tensor:
        t1, t2, mu, ladj = self._constrained({"theta1_raw": theta1_raw, "theta2_raw": theta2_raw, "mu_raw": mu_raw})
        lp = 2 * self.log_uniform_simplex + normal_lp(mu[..., 0], 3.0, 1.0) + normal_lp(mu[..., 1], 10.0, 1.0)
        log_trans = torch.stack([t1, t2], dim=-2).log()
        log_emit = normal_lp(self.y[:, None], mu[..., None, :], 1.0)  # (*S, N, K)
        return lp + hmm_log_likelihood(log_trans, log_emit) + ladj

    def stan_quantities(self, z: Mapping[str, Tensor]) -> dict[str, Tensor]:
        t1, t2, mu, _ = self._constrained(z)
        return {"theta1": t1, "theta2": t2, "mu": mu}


class HMMDrive0(PosteriordbModel):
    """posteriordb ``hmm_drive_0`` (basketball drives): exponential emissions for 1/speed ``u`` (rate
    :math:`\\phi_k`) and hoop distance ``v`` (rate :math:`\\lambda_k`); Dirichlet(``alpha[k]``) transition rows;
    :math:`\\phi_1, \\lambda_1 \\sim N(0,1)`, :math:`\\phi_2, \\lambda_2 \\sim N(3,1)`."""

    posteriordb_name = "hmm_drive_0"

    def __init__(self, u: Tensor, v: Tensor, alpha: Tensor):
        K = alpha.shape[0]
        super().__init__(
            [
                Latent("theta1_raw", (K - 1,)),
                Latent("theta2_raw", (K - 1,)),
                Latent("phi_raw", (K,)),
                Latent("lambda_raw", (K,)),
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

    def _constrained(self, z: Mapping[str, Tensor]):
        t1, j1 = stick_breaking(z["theta1_raw"])
        t2, j2 = stick_breaking(z["theta2_raw"])
        phi, j3 = positive_ordered(z["phi_raw"])
        lam, j4 = positive_ordered(z["lambda_raw"])
        return t1, t2, phi, lam, j1 + j2 + j3 + j4

    def log_joint(self, theta1_raw: Tensor, theta2_raw: Tensor, phi_raw: Tensor, lambda_raw: Tensor) -> Tensor:
        t1, t2, phi, lam, ladj = self._constrained(
            {"theta1_raw": theta1_raw, "theta2_raw": theta2_raw, "phi_raw": phi_raw, "lambda_raw": lambda_raw}
        )
        alpha = self.alpha.to(t1.dtype)
        lp = Dirichlet(alpha[0], validate_args=False).log_prob(t1) + Dirichlet(alpha[1], validate_args=False).log_prob(
            t2
        )
        lp = lp + normal_lp(phi[..., 0], 0.0, 1.0) + normal_lp(phi[..., 1], 3.0, 1.0)
        lp = lp + normal_lp(lam[..., 0], 0.0, 1.0) + normal_lp(lam[..., 1], 3.0, 1.0)
        log_trans = torch.stack([t1, t2], dim=-2).log()
        # exponential_lpdf(u | phi) = log phi - phi u, and the same for v with lambda
        phi_, lam_ = phi[..., None, :], lam[..., None, :]
        log_emit = phi_.log() - phi_ * self.u[:, None] + lam_.log() - lam_ * self.v[:, None]
        return lp + hmm_log_likelihood(log_trans, log_emit) + ladj

    def stan_quantities(self, z: Mapping[str, Tensor]) -> dict[str, Tensor]:
        t1, t2, phi, lam, _ = self._constrained(z)
        return {"theta1": t1, "theta2": t2, "phi": phi, "lambda": lam}
