r"""Iterate averaging (Polyak–Ruppert) of variational parameters.

With a constant Adam step the iterates keep jittering around the optimum; their uniform average over
the final phase has far smaller error (Dhaka et al. 2020, arXiv:2009.00666 "Robust, accurate stochastic
optimization for variational inference"): :math:`\bar\nu = \frac1T\sum_{t} \nu_t`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..utils.torch_private import foreach_lerp_

__all__ = ["IterateAverage"]


class IterateAverage:
    """Running uniform average of a module's parameters."""

    def __init__(self, module: nn.Module):
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.avg = [p.detach().clone() for p in self.params]
        self.count = 1

    @torch.no_grad()
    def update(self) -> None:
        self.count += 1
        foreach_lerp_(self.avg, [p.detach() for p in self.params], 1.0 / self.count)

    @torch.no_grad()
    def apply(self) -> None:
        """Write the averaged values into the module's parameters."""
        for p, a in zip(self.params, self.avg):
            p.copy_(a)
