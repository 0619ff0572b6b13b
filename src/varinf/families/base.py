"""The family interface: an ``nn.Module`` whose ``forward(c=None)`` returns a torch Distribution.

Same contract as zuko's ``LazyDistribution``: parameters live in the module; calling it builds a plain
``torch.distributions.Distribution`` (``rsample``/``log_prob``) over unconstrained vectors of size
``dim``, with event shape ``(dim,)``. ``c`` is a conditioning input for amortized families (a batch of
observations), ``None`` otherwise.
"""

from __future__ import annotations

import abc

from torch import Tensor, nn
from torch.distributions import Distribution

__all__ = ["AbstractFamily"]


class AbstractFamily(nn.Module, abc.ABC):
    """A variational family :math:`q(z;\\nu)` over :math:`\\mathbb{R}^{dim}`."""

    dim: int

    @abc.abstractmethod
    def forward(self, c: Tensor | None = None) -> Distribution:
        """Build :math:`q` (conditioned on ``c`` for amortized families)."""
