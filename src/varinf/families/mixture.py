r"""``EqualMixture``: :math:`q(z) = \frac1I \sum_{i=1}^I q_i(z)`, the proposal of multi-path Pathfinder.

Draws pick a component uniformly at random; the density is the mixture's (log-sum-exp over components),
which is the "balance heuristic" weight for importance sampling from several proposals (Veach & Guibas 1995)
and never has heavier-tailed ratios than any single component's. Components are any Distributions over the
same ``(D,)`` event; no reparameterized sampler (the mixture is a result, not something optimized).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

from .base import AbstractFamily

__all__ = ["EqualMixture", "MixtureFamily"]


class EqualMixture(Distribution):
    """Uniform mixture of ``components`` (a list of Distributions with the same event shape ``(D,)``)."""

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = False

    def __init__(self, components: list[Distribution], validate_args: bool | None = False):
        if not components:
            raise ValueError("a mixture needs at least one component")
        self.components = list(components)
        super().__init__(torch.Size(), components[0].event_shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return torch.stack([c.mean for c in self.components]).mean(0)

    @property
    def variance(self) -> Tensor:
        m = torch.stack([c.mean for c in self.components])
        v = torch.stack([c.variance for c in self.components])
        return (v + m.square()).mean(0) - m.mean(0).square()

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    @torch.no_grad()
    def sample(self, sample_shape=torch.Size()) -> Tensor:
        shape = torch.Size(sample_shape)
        n = math.prod(shape)
        first = self.components[0]
        which = torch.randint(len(self.components), (n,), device=first.mean.device)
        out = torch.empty((n, *self.event_shape), dtype=first.mean.dtype, device=first.mean.device)
        for i, c in enumerate(self.components):
            idx = (which == i).nonzero().squeeze(-1)
            if idx.numel():
                out[idx] = c.sample((idx.numel(),))
        return out.reshape(*shape, *self.event_shape)

    def log_prob(self, value: Tensor) -> Tensor:
        lps = torch.stack([c.log_prob(value) for c in self.components])
        return torch.logsumexp(lps, 0) - math.log(len(self.components))


class MixtureFamily(AbstractFamily):
    """A fixed :class:`EqualMixture` of family modules (each ``forward()`` gives one component)."""

    def __init__(self, components: list[AbstractFamily]):
        super().__init__()
        self.parts = nn.ModuleList(components)
        self.dim = int(components[0].dim)

    def forward(self, c: Tensor | None = None) -> Distribution:
        if len(self.parts) == 1:
            return self.parts[0](c)
        return EqualMixture([p(c) for p in self.parts])
