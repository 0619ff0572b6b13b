"""One stochastic-gradient step on a bound, by autograd: build q, estimate the bound, backpropagate, update.

``step`` works for any family, objective, conditioning input (amortized families) and prior; call it directly
for custom loops. ADVI (:mod:`.methods.advi`) takes the closed-form Gaussian step of :mod:`.gaussian_step` where
that applies (same values and gradients, about half the tensor operations) and this one otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

__all__ = ["StepInfo", "step"]


@dataclass
class StepInfo:
    """What one step measured. ``loss = -bound`` (nats); tensors are detached."""

    loss: Tensor
    bound: Tensor
    finite: bool


def step(
    log_p: Callable[[Tensor], Tensor],
    family: nn.Module,
    objective,
    optimizer: torch.optim.Optimizer,
    context: Tensor | None = None,
    prior: Distribution | None = None,
) -> StepInfo:
    """Take one stochastic-gradient step on ``objective.loss(family(context), log_p, prior)``.

    A non-finite loss skips the update (the caller decides how to recover) and is reported in
    ``StepInfo.finite``.
    """
    optimizer.zero_grad(set_to_none=True)
    est = objective.loss(family(context), log_p, prior)
    loss = est.loss
    finite = math.isfinite(loss.item())
    if finite:
        loss.backward()
        optimizer.step()
    return StepInfo(loss=loss.detach(), bound=est.bound, finite=finite)
