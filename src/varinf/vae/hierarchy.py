r"""Two stochastic layers (Burda et al. 2016, arXiv:1509.00519, section 5) as distributions over one vector.

The latent is the concatenation :math:`z = (z_1, z_2)` with :math:`z_1\in\mathbb{R}^{d_1}` (next to the
data) and :math:`z_2\in\mathbb{R}^{d_2}` (top). Both the encoder and the prior are *Gaussian chains*,

.. math::
    q(z\mid x) = q(z_1\mid x)\,q(z_2\mid z_1), \qquad p(z) = p(z_2)\,p(z_1\mid z_2),\quad p(z_2) = N(0, I),

and the decoder reads :math:`z_1` only: :math:`p(x\mid z) = p(x\mid z_1)`. Writing them as ordinary
Distributions over :math:`z` lets the core objectives (``ELBO``/``IWAE`` with ``prior=``) train the
model unchanged: the rate :math:`E_q[\log q(z\mid x) - \log p(z)]` is then a Monte Carlo estimate (no
closed-form KL between chains), and DReG applies because the whole chain is reparameterized.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal, constraints

from ..families import AbstractFamily
from .distributed import Shard
from .networks import mlp, mlp_encoder

__all__ = ["GaussianChain", "TwoLayerEncoder", "TwoLayerPrior"]

_NO_SAMPLE = torch.Size()

Conditional = Callable[[Tensor], tuple[Tensor, Tensor]]


def _normal(h: Tensor, min_scale: float) -> tuple[Tensor, Tensor]:
    loc, raw = h.chunk(2, dim=-1)
    return loc, F.softplus(raw) + min_scale


class GaussianChain(Distribution):
    """:math:`a \\sim` ``first``, :math:`b\\mid a \\sim N(\\text{cond}(a))`; the value is ``[a, b]`` if
    ``a_first`` else ``[b, a]``. Batch shape = ``first``'s; event shape ``(d_a + d_b,)``."""

    arg_constraints: ClassVar[dict] = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, first: Independent, cond: Conditional, dim_b: int, a_first: bool, shard: Shard | None = None):
        self.first, self.cond, self.dim_b, self.a_first, self.shard = first, cond, int(dim_b), a_first, shard
        self.dim_a = first.event_shape[-1]
        super().__init__(first.batch_shape, torch.Size([self.dim_a + self.dim_b]), validate_args=False)

    def with_shard(self, shard: Shard) -> GaussianChain:
        first = shard.wrap(self.first)
        return GaussianChain(first, self.cond, self.dim_b, self.a_first, shard)

    def _split(self, z: Tensor) -> tuple[Tensor, Tensor]:
        if self.a_first:
            return z[..., : self.dim_a], z[..., self.dim_a :]
        return z[..., self.dim_b :], z[..., : self.dim_b]

    def _join(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.cat([a, b] if self.a_first else [b, a], dim=-1)

    def rsample(self, sample_shape=_NO_SAMPLE) -> Tensor:
        a = self.first.rsample(sample_shape)
        loc, scale = self.cond(a)
        if self.shard is None:
            eps = torch.empty(loc.shape, dtype=loc.dtype, device=loc.device).normal_()
        else:
            eps = self.shard.standard_normal(torch.Size(sample_shape), self.batch_shape, torch.Size([self.dim_b]), loc)
        return self._join(a, loc + scale * eps)

    def sample(self, sample_shape=_NO_SAMPLE) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value: Tensor) -> Tensor:
        a, b = self._split(value)
        loc, scale = self.cond(a)
        return self.first.log_prob(a) + Normal(loc, scale, validate_args=False).log_prob(b).sum(-1)


class TwoLayerEncoder(AbstractFamily):
    """:math:`q(z_1\\mid x)` from an MLP on x, :math:`q(z_2\\mid z_1)` from an MLP on :math:`z_1`; ``dim = d1 + d2``."""

    def __init__(
        self,
        data_shape: tuple[int, ...],
        latents: tuple[int, int] = (100, 50),
        hidden: tuple[tuple[int, ...], tuple[int, ...]] = ((200, 200), (100, 100)),
        activation: str = "tanh",
        min_scale: float = 1e-4,
    ):
        super().__init__()
        (d1, d2), (h1, h2) = latents, hidden
        self.d1, self.d2, self.dim, self.min_scale = d1, d2, d1 + d2, min_scale
        self.net1 = mlp_encoder(data_shape, h1, d1, activation)
        self.net2 = mlp((d1, *h2, 2 * d2), activation)

    def forward(self, c: Tensor | None = None) -> GaussianChain:
        if c is None:
            raise ValueError("an amortized family needs its conditioning input (the observations x)")
        loc, scale = _normal(self.net1(c), self.min_scale)
        first = Independent(Normal(loc, scale, validate_args=False), 1)
        return GaussianChain(first, lambda z1: _normal(self.net2(z1), self.min_scale), self.d2, a_first=True)


class TwoLayerPrior(nn.Module):
    """:math:`p(z_2) = N(0, I)`, :math:`p(z_1\\mid z_2)` Gaussian from an MLP; a Distribution over ``[z1, z2]``."""

    def __init__(
        self, latents: tuple[int, int] = (100, 50), hidden: tuple[int, ...] = (100, 100), activation: str = "tanh"
    ):
        super().__init__()
        d1, d2 = latents
        self.d1, self.d2, self.dim = d1, d2, d1 + d2
        self.net = mlp((d2, *hidden, 2 * d1), activation)
        self.register_buffer("zero", torch.zeros(d2))

    def forward(self, encoder: nn.Module | None = None) -> GaussianChain:
        top = Independent(Normal(self.zero, torch.ones_like(self.zero), validate_args=False), 1)
        return GaussianChain(top, lambda z2: _normal(self.net(z2), 1e-4), self.d1, a_first=False)
