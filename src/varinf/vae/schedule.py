r"""Learning-rate schedules as pure functions of the epoch (so a resumed run needs no scheduler state).

- ``"burda"`` (Burda et al. 2016, arXiv:1509.00519, after Kingma & Ba): stage :math:`i = 0, 1, \dots, 7`
  lasts :math:`3^i` epochs at :math:`\text{lr}\cdot 10^{-i/7}`; 3280 epochs in all (the last rate is kept after).
- ``"cosine"``: :math:`\text{lr}\,(0.01 + 0.99\,\tfrac12(1+\cos(\pi e/E)))` over ``epochs`` :math:`E`.
- ``"constant"``.
"""

from __future__ import annotations

import math

__all__ = ["SCHEDULES", "learning_rate"]

SCHEDULES = ("burda", "cosine", "constant")


def learning_rate(schedule: str, lr: float, epoch: int, epochs: int = 1) -> float:
    """Step size for ``epoch`` (0-based)."""
    if schedule == "constant":
        return lr
    if schedule == "burda":
        stage, end = 0, 1
        while epoch >= end and stage < 7:
            stage += 1
            end += 3**stage
        return lr * 10 ** (-stage / 7)
    if schedule == "cosine":
        frac = min(1.0, epoch / max(1, epochs))
        return lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose from {SCHEDULES}")
