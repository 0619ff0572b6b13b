r"""Amortized families: :math:`q(z\mid x)` whose parameters are computed from :math:`x` by a network.

A VAE encoder is an amortized family: ``AmortizedNormal(net, dim)(x)`` is a diagonal Gaussian with
batch shape ``x.shape[:-k]`` (one distribution per observation) and event shape ``(dim,)``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Independent, Normal

from .base import AbstractFamily

__all__ = ["AmortizedNormal"]


class AmortizedNormal(AbstractFamily):
    r""":math:`q(z\mid x) = N(\mu(x), \mathrm{diag}\,\sigma(x)^2)` with ``net(x) -> (..., 2*dim)``
    split into :math:`\mu` and a pre-softplus scale (plus ``min_scale`` for stability)."""

    def __init__(self, net: nn.Module, dim: int, min_scale: float = 1e-4):
        super().__init__()
        self.net, self.dim, self.min_scale = net, int(dim), float(min_scale)

    def forward(self, c: Tensor | None = None) -> Independent:
        if c is None:
            raise ValueError("an amortized family needs its conditioning input (the observations x)")
        h = self.net(c)
        if h.shape[-1] != 2 * self.dim:
            raise ValueError(f"the encoder network must output 2*dim={2 * self.dim} features, got {h.shape[-1]}")
        loc, raw = h.chunk(2, dim=-1)
        return Independent(Normal(loc, F.softplus(raw) + self.min_scale, validate_args=False), 1)
