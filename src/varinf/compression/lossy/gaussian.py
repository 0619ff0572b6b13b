"""Gaussian conditional: the scale-hyperprior entropy model for the main latent :math:`y`.

Given a predicted scale :math:`\\sigma` (from the hyper-synthesis), the noisy latent has likelihood

.. math::

    p(\\tilde y \\mid \\sigma) = \\Phi\\!\\left(\\frac{\\tfrac12 - |\\tilde y|}{\\sigma}\\right)
        - \\Phi\\!\\left(\\frac{-\\tfrac12 - |\\tilde y|}{\\sigma}\\right),
    \\qquad \\sigma \\ge \\sigma_{\\min} = 0.11

(zero-mean Gaussian convolved with the unit box; Ballé et al. 2018, arXiv:1802.01436). For coding, scales
are snapped to a fixed log-spaced set of ``levels`` (:class:`ScaleLevels`) and each level owns one integer
row of :func:`~varinf.compression.coding.tables.gaussian_table`. The snapping is an *integer* comparison of a
fixed-point scale with fixed-point boundaries, so encoder and decoder pick the same row.

Example::

    >>> import torch
    >>> from varinf.compression.lossy.gaussian import gaussian_likelihood
    >>> float(gaussian_likelihood(torch.zeros(1), torch.ones(1))) > 0.38
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..coding.tables import DiscreteTable, gaussian_table

__all__ = ["SCALE_MIN", "ScaleLevels", "gaussian_likelihood", "lower_bound"]

SCALE_MIN = 0.11  # below this a unit-width bin already holds > 99.99% of the mass
LIKELIHOOD_BOUND = 1e-9


class _LowerBound(torch.autograd.Function):
    """``max(x, bound)`` whose gradient still flows when it pushes ``x`` upwards (Ballé's LowerBound op)."""

    @staticmethod
    def forward(ctx, x, bound: float):
        ctx.save_for_backward(x)
        ctx.bound = bound
        return torch.clamp(x, min=bound)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        pass_through = (x >= ctx.bound) | (grad < 0)
        return grad * pass_through, None


def lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    """``max(x, bound)`` with the straight-through-when-increasing gradient."""
    return _LowerBound.apply(x, bound)


def gaussian_likelihood(y: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Probability of the unit bin around ``y`` under N(0, scale²), any broadcastable shapes."""
    scale = lower_bound(scale, SCALE_MIN)
    v = torch.abs(y)
    # Phi(t) = erfc(-t / sqrt 2) / 2; written with erfc so that both terms stay accurate in the tail
    upper = 0.5 * torch.erfc(-(0.5 - v) / (scale * math.sqrt(2.0)))
    lower = 0.5 * torch.erfc(-(-0.5 - v) / (scale * math.sqrt(2.0)))
    return torch.clamp(upper - lower, min=LIKELIHOOD_BOUND)


@dataclass(frozen=True, eq=False)
class ScaleLevels:
    """``count`` log-spaced scales in ``[minimum, maximum]`` and the integer rule that picks one.

    Scales arrive in fixed point, ``scale_fp = round(scale * 2**frac_bits)`` (an integer array), and map to
    the level whose *geometric* bin contains them: ``index = #{k : boundary_fp[k] <= scale_fp}`` with
    ``boundary_fp[k] = ceil(sqrt(s_k s_{k+1}) 2**frac_bits)``. Only integers are compared at coding time.
    """

    minimum: float = SCALE_MIN
    maximum: float = 256.0
    count: int = 256
    frac_bits: int = 12

    @property
    def scales(self) -> np.ndarray:
        """``(count,)`` float64 level values."""
        return np.exp(np.linspace(math.log(self.minimum), math.log(self.maximum), self.count))

    @property
    def boundaries(self) -> np.ndarray:
        """``(count - 1,)`` int64 fixed-point boundaries between consecutive levels."""
        s = self.scales
        return np.ceil(np.sqrt(s[:-1] * s[1:]) * 2.0**self.frac_bits).astype(np.int64)

    def index(self, scale_fp: np.ndarray) -> np.ndarray:
        """Level index for fixed-point scales (int64 array, any shape) -> int64 array of the same shape."""
        return np.searchsorted(self.boundaries, np.asarray(scale_fp, dtype=np.int64), side="right")

    def table(self, tail_mass: float = 1e-7) -> DiscreteTable:
        """One integer Gaussian row per level."""
        return gaussian_table(self.scales, tail_mass)
