"""Generalized divisive normalization (GDN) and its inverse, the nonlinearity of Ballé's transforms.

.. math::

    \\mathrm{GDN}(x)_i = \\frac{x_i}{\\sqrt{\\beta_i + \\sum_j \\gamma_{ij} x_j^2}}, \\qquad
    \\mathrm{IGDN}(x)_i = x_i \\sqrt{\\beta_i + \\sum_j \\gamma_{ij} x_j^2}

with :math:`\\beta > 0` and :math:`\\gamma \\ge 0` (Ballé, Laparra & Simoncelli 2016, arXiv:1511.06281).
Shapes: ``(B, C, H, W) -> (B, C, H, W)``.

Example::

    >>> import torch
    >>> from varinf.compression.lossy.gdn import GDN
    >>> GDN(8)(torch.randn(2, 8, 5, 5)).shape
    torch.Size([2, 8, 5, 5])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GDN", "NonNegative"]

# The reparametrization keeps parameters a little above their bound so that gradients never vanish
# exactly at the boundary (Ballé 2018, appendix 6.1): value = max(p, sqrt(min + pedestal))**2 - pedestal.
_PEDESTAL = 2.0**-36


class NonNegative(nn.Module):
    """Maps an unconstrained parameter ``p`` to ``max(p, sqrt(minimum + eps))**2 - eps`` (>= ``minimum``)."""

    def __init__(self, minimum: float = 0.0):
        super().__init__()
        self.minimum = float(minimum)
        self.bound = (self.minimum + _PEDESTAL) ** 0.5

    def init(self, value: torch.Tensor) -> torch.Tensor:
        """The stored parameter whose image is ``value``."""
        return torch.sqrt(torch.clamp(value + _PEDESTAL, min=_PEDESTAL))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return torch.clamp(p, min=self.bound) ** 2 - _PEDESTAL


class GDN(nn.Module):
    """GDN (``inverse=False``, used in the analysis transform) or IGDN (``inverse=True``, synthesis).

    ``beta`` starts at 1 and ``gamma`` at ``gamma_init * I`` so that the layer starts close to identity.
    """

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = bool(inverse)
        self.beta_map = NonNegative(beta_min)
        self.gamma_map = NonNegative(0.0)
        self.beta = nn.Parameter(self.beta_map.init(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_map.init(gamma_init * torch.eye(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        beta = self.beta_map(self.beta)
        gamma = self.gamma_map(self.gamma).reshape(c, c, 1, 1)
        norm = F.conv2d(x * x, gamma, beta)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)
