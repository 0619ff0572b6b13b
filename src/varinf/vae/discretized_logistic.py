r"""Discretized logistic distribution over 8-bit values :math:`k\in\{0,\dots,255\}` (PixelCNN++,
Salimans et al. 2017, arXiv:1701.05517).

Pixel :math:`k` has bin center :math:`c_k = 2k/255 - 1\in[-1,1]` and half-width :math:`h = 1/255`; with
:math:`a = (c_k + h - \mu)/s` and :math:`b = (c_k - h - \mu)/s`,

.. math::
    P(k) = \sigma(a) - \sigma(b),\qquad \text{edges: } P(0) = \sigma(a),\ P(255) = 1 - \sigma(b),

so the 256 probabilities sum to one exactly. The log is computed without cancellation from the identity
:math:`\sigma(a)-\sigma(b) = \sigma(a)\,\sigma(-b)\,(1-e^{-(a-b)})`:

.. math::
    \log P(k) = [k<255]\log\sigma(a) + [k>0]\log\sigma(-b) + [0<k<255]\log(1-e^{-(a-b)}).

``loc`` and ``scale`` are in the normalized units of :math:`c_k`. Values are floats holding integers.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution, constraints
from torch.distributions.utils import broadcast_all

from ..utils.torch_private import validates

__all__ = ["DiscretizedLogistic"]

_NO_SAMPLE = torch.Size()


class DiscretizedLogistic(Distribution):
    """Per-element discretized logistic over ``{0, ..., bins-1}`` (batch shape = broadcast of the params).

    Example:
        >>> import torch
        >>> d = DiscretizedLogistic(torch.zeros(3), torch.full((3,), 0.1))
        >>> d.probs().sum(-1)  # doctest: +ELLIPSIS
        tensor([1.0000, 1.0000, 1.0000]...)
    """

    arg_constraints: ClassVar[dict] = {"loc": constraints.real, "scale": constraints.positive}
    has_rsample = False

    def __init__(self, loc: Tensor, scale: Tensor, bins: int = 256, validate_args: bool | None = None):
        self.loc, self.scale = broadcast_all(loc, scale)
        self.bins = int(bins)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def support(self):
        return constraints.integer_interval(0, self.bins - 1)

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape)
        return DiscretizedLogistic(self.loc.expand(shape), self.scale.expand(shape), self.bins)

    def _centers(self, k: Tensor) -> Tensor:
        return 2.0 * k / (self.bins - 1) - 1.0

    def log_prob(self, value: Tensor) -> Tensor:
        if validates(self):
            self._validate_sample(value)
        half = 1.0 / (self.bins - 1)
        centered = self._centers(value) - self.loc
        a = (centered + half) / self.scale
        b = (centered - half) / self.scale
        top, bottom = value >= self.bins - 1, value <= 0
        log_sig_a = torch.where(top, 0.0, F.logsigmoid(a))
        log_sig_neg_b = torch.where(bottom, 0.0, F.logsigmoid(-b))
        # (a - b) = 2h/s > 0; -expm1(-d) = 1 - e^{-d} keeps precision for tiny d
        log_gap = torch.where(top | bottom, 0.0, torch.log(-torch.expm1(-(a - b))))
        return log_sig_a + log_sig_neg_b + log_gap

    def log_probs(self) -> Tensor:
        """The full table :math:`\\log P(k)`, ``(*batch_shape, bins)`` (for entropy coders and exact means)."""
        k = torch.arange(self.bins, dtype=self.loc.dtype, device=self.loc.device)
        return DiscretizedLogistic(self.loc.unsqueeze(-1), self.scale.unsqueeze(-1), self.bins).log_prob(k)

    def probs(self) -> Tensor:
        """The full probability table ``(*batch_shape, bins)``."""
        return self.log_probs().exp()

    @property
    def mean(self) -> Tensor:
        k = torch.arange(self.bins, dtype=self.loc.dtype, device=self.loc.device)
        return (self.probs() * k).sum(-1)

    @property
    def mode(self) -> Tensor:
        return ((self.loc.clamp(-1, 1) + 1) * (self.bins - 1) / 2).round()

    def sample(self, sample_shape=_NO_SAMPLE) -> Tensor:
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            u = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device).clamp(1e-6, 1 - 1e-6)
            x = self.loc + self.scale * (torch.log(u) - torch.log1p(-u))  # logistic draw in normalized units
            return ((x + 1) * (self.bins - 1) / 2).round().clamp(0, self.bins - 1)
