"""Control variates for score-function (REINFORCE) gradients.

A baseline :math:`b` independent of draw :math:`s` leaves :math:`E[(f_s - b)\\nabla\\log q(z_s)]` unbiased
since :math:`E[\\nabla \\log q] = 0`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["EMABaseline", "leave_one_out"]


def leave_one_out(f: Tensor) -> Tensor:
    """:math:`b_s = \\frac{1}{S-1}\\sum_{j\\ne s} f_j` over dim 0 (needs S >= 2)."""
    S = f.shape[0]
    return (f.sum(0, keepdim=True) - f) / (S - 1)


@dataclass
class EMABaseline:
    """Exponential moving average of the learning signal across steps (for a single particle).

    ``value(f)`` returns the average *before* seeing ``f`` (so it is independent of the current draw),
    then folds ``f`` in. The first call returns 0.
    """

    decay: float = 0.9
    _avg: Tensor | None = None

    def value(self, f: Tensor) -> Tensor:
        fm = f.mean(0).detach()
        if self._avg is None or self._avg.shape != fm.shape:
            self._avg = fm
            return torch.zeros_like(fm)
        b = self._avg
        self._avg = self.decay * b + (1 - self.decay) * fm
        return b
