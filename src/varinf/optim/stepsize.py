r"""Step-size choice, after Stan's ADVI adaptation: try a few learning rates for a short run each from
the same starting point and keep the one whose bound is highest at the end (ties go to the smaller step,
which is the safer one)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .gradient_step import StepInfo

__all__ = ["CANDIDATE_LRS", "adapt_lr"]

CANDIDATE_LRS = (0.3, 0.1, 0.03, 0.01)


def adapt_lr(
    log_p: Callable[[Tensor], Tensor],
    family: nn.Module,
    objective,
    make_optimizer: Callable[[list, float], torch.optim.Optimizer],
    update: Callable[..., StepInfo],
    candidates: tuple[float, ...] = CANDIDATE_LRS,
    steps: int = 50,
) -> tuple[float, int]:
    """Return ``(best_lr, steps_taken)``; ``update(log_p, family, objective, optimizer) -> StepInfo`` takes one
    step (ADVI's). The family's parameters are restored afterwards."""
    state0 = copy.deepcopy(family.state_dict())
    scores = []
    for lr in candidates:
        family.load_state_dict(state0)
        opt = make_optimizer(list(family.parameters()), lr)
        tail = []
        for i in range(steps):
            info = update(log_p, family, objective, opt)
            if not info.finite:
                break
            if i >= steps // 2:
                tail.append(float(info.bound.mean()))
        ok = len(tail) == steps - steps // 2 and all(math.isfinite(t) for t in tail)
        scores.append(sum(tail) / len(tail) if ok else -math.inf)
    family.load_state_dict(state0)
    best = max(range(len(candidates)), key=lambda i: (scores[i], -candidates[i]))
    if not math.isfinite(scores[best]):
        best = len(candidates) - 1
    return candidates[best], steps * len(candidates)
