r"""Small log-density helpers shared by the posteriordb models (nats, all constants kept).

Elementwise and broadcasting; no argument validation (hot path; the models validate their data once).
Heavier densities (Student-t, Gamma, Beta, Dirichlet, multivariate normal) come from ``torch.distributions``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["half_cauchy_lp", "half_normal_lp", "normal_lp"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_LOG_2 = math.log(2.0)


def normal_lp(x: Tensor, loc, scale) -> Tensor:
    r""":math:`\log N(x; \mu, \sigma^2) = -\tfrac12 ((x-\mu)/\sigma)^2 - \log\sigma - \tfrac12\log 2\pi`."""
    scale = torch.as_tensor(scale, dtype=x.dtype, device=x.device)
    return -0.5 * ((x - loc) / scale) ** 2 - scale.log() - _HALF_LOG_2PI


def half_normal_lp(x: Tensor, scale: float) -> Tensor:
    r"""Half-normal on :math:`x > 0`: :math:`\log 2 + \log N(x; 0, s^2)` (Stan's ``normal(0, s)`` with ``<lower=0>``)."""
    return normal_lp(x, 0.0, scale) + _LOG_2


def half_cauchy_lp(x: Tensor, scale: float) -> Tensor:
    r"""Half-Cauchy on :math:`x > 0`: :math:`\log 2 - \log(\pi s) - \log(1 + (x/s)^2)`."""
    return _LOG_2 - math.log(math.pi * scale) - torch.log1p((x / scale) ** 2)
