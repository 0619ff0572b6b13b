r"""Training objectives for VAEs: the core bounds plus KL annealing and free bits, chosen per step.

- ELBO / :math:`\beta`-VAE: :class:`varinf.objectives.ELBO` with ``beta`` (loss = distortion + β·rate);
  β is the rate-distortion knob (Higgins et al. 2017; Alemi et al. 2018, arXiv:1711.00464).
- KL annealing (Bowman et al. 2016, arXiv:1511.06349): β rises linearly from 0 to its target over
  ``kl_warmup_steps`` steps.
- Free bits (Kingma et al. 2016, arXiv:1606.04934): each latent dimension's batch-averaged KL is charged at
  least λ nats, :math:`\sum_j \max(\lambda, E_{batch} KL_j)`, so the optimizer gains nothing by collapsing it.
- IWAE with ``k`` samples and ``gradient="dreg"`` (Tucker et al. 2019, arXiv:1810.04152): the core ``IWAE``.

Sign/units: ``loss`` is what is minimized, in nats; ``bound`` is always the true ELBO/IWAE estimate.
With β ≠ 1 or free bits the loss is a surrogate and no longer equals ``-bound``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.distributions import Distribution, Independent, Normal, kl_divergence

from ..objectives import ELBO, IWAE, BoundEstimate

__all__ = ["FreeBits", "make_objective"]


@dataclass(frozen=True)
class FreeBits:
    r"""ELBO whose rate term is :math:`\beta\sum_j\max(\lambda, \frac1B\sum_b KL_{bj})` (per-dimension KL, analytic).

    Needs a Gaussian encoder and a Gaussian prior (one stochastic layer, standard-normal prior).
    """

    nats: float
    num_particles: int = 1
    beta: float = 1.0

    def loss(self, q: Distribution, log_p, prior: Distribution | None = None) -> BoundEstimate:
        if not all(isinstance(d, Independent) and isinstance(d.base_dist, Normal) for d in (q, prior)):
            raise ValueError("free bits need a Gaussian encoder and a Gaussian prior (per-dimension KL)")
        kl = kl_divergence(q.base_dist, prior.base_dist)  # (B, D) nats per dimension
        z = q.rsample((self.num_particles,))
        distortion = -log_p(z).mean(0)
        rate = kl.sum(-1)
        charged = torch.clamp(kl.mean(0), min=self.nats).sum()
        return BoundEstimate(
            loss=distortion.mean() + self.beta * charged,
            bound=-(distortion + rate).detach(),
            rate=rate.detach(),
            distortion=distortion.detach(),
        )


def make_objective(
    objective: str,
    k: int = 1,
    gradient: str = "reparam",
    beta: float = 1.0,
    free_bits: float = 0.0,
    kl_warmup_steps: int = 0,
    step: int = 0,
):
    """The objective to use at training ``step`` (β annealed linearly over ``kl_warmup_steps``).

    Args:
        objective: ``"elbo"`` (with ``k`` particles) or ``"iwae"`` (``k`` importance samples).
        gradient: core estimator name (``"reparam"``, ``"stl"``, ``"dreg"`` for IWAE, ...).
    """
    if objective == "iwae":
        if beta != 1.0 or free_bits or kl_warmup_steps:
            raise ValueError("beta, free bits and KL annealing apply to the ELBO objective, not IWAE")
        return IWAE(num_particles=k, gradient=gradient)
    if objective != "elbo":
        raise ValueError(f"unknown objective {objective!r}; choose 'elbo' or 'iwae'")
    b = beta * min(1.0, step / kl_warmup_steps) if kl_warmup_steps > 0 else beta
    if free_bits > 0:
        if gradient != "reparam":
            raise ValueError("free bits use the reparameterization gradient")
        return FreeBits(nats=free_bits, num_particles=k, beta=b)
    return ELBO(num_particles=k, gradient=gradient, beta=b)
