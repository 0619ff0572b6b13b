r"""Priors :math:`p(z)`: modules whose ``forward(encoder)`` returns a Distribution over :math:`\mathbb{R}^{D}`.

The encoder is passed in (rather than stored) because the VampPrior is built *from* it, and storing it
twice would duplicate its weights in checkpoints.

- :class:`StandardNormalPrior`: :math:`N(0, I)`; the KL to a Gaussian encoder is analytic.
- :class:`VampPrior` (Tomczak & Welling 2018, arXiv:1705.07120):
  :math:`p(z) = \frac1K\sum_k q(z\mid u_k)` with learned pseudo-inputs :math:`u_k`.
- :class:`FlowPrior`: :math:`N(0, I)` pushed through a zuko flow (:class:`varinf.families.Flow`).
- :class:`~varinf.vae.hierarchy.TwoLayerPrior`: :math:`p(z_2)p(z_1\mid z_2)` for two stochastic layers.

With a learned prior the rate :math:`KL(q\,\|\,p)` has no closed form; the core ELBO then estimates it by
Monte Carlo from the same draws.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

from ..families import AbstractFamily, Flow
from .hierarchy import TwoLayerPrior

__all__ = ["PRIORS", "FlowPrior", "StandardNormalPrior", "TwoLayerPrior", "VampPrior"]


class StandardNormalPrior(nn.Module):
    """:math:`p(z) = N(0, I_D)`."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = int(dim)
        self.register_buffer("zero", torch.zeros(self.dim))

    def forward(self, encoder: AbstractFamily | None = None) -> Distribution:
        return Independent(Normal(self.zero, torch.ones_like(self.zero), validate_args=False), 1)


class VampPrior(nn.Module):
    """Mixture of the encoder's posteriors at ``components`` learned pseudo-inputs of shape ``input_shape``.

    Pseudo-inputs live in the encoder's (normalized) input space.
    """

    def __init__(self, dim: int, input_shape: tuple[int, ...], components: int = 500):
        super().__init__()
        self.dim, self.components = int(dim), int(components)
        self.pseudo_inputs = nn.Parameter(0.1 * torch.randn(self.components, *input_shape))

    def forward(self, encoder: AbstractFamily | None = None) -> Distribution:
        if encoder is None:
            raise ValueError("the VampPrior is built from the encoder: call prior(encoder)")
        q = encoder(self.pseudo_inputs)
        if not (isinstance(q, Independent) and isinstance(q.base_dist, Normal)):
            raise ValueError("the VampPrior needs a Gaussian (one stochastic layer) encoder")
        weights = Categorical(logits=torch.zeros(self.components, device=self.pseudo_inputs.device))
        return MixtureSameFamily(weights, q)


class FlowPrior(nn.Module):
    """:math:`N(0, I)` through a zuko neural spline flow (``transforms`` layers of ``hidden`` MADEs)."""

    def __init__(self, dim: int, transforms: int = 3, hidden: tuple[int, ...] = (128, 128)):
        super().__init__()
        self.dim = int(dim)
        self.flow = Flow(self.dim, kind="nsf", transforms=transforms, hidden=hidden)

    def forward(self, encoder: AbstractFamily | None = None) -> Distribution:
        return self.flow()


PRIORS = {"normal": StandardNormalPrior, "vamp": VampPrior, "flow": FlowPrior, "two_layer": TwoLayerPrior}
