"""One optimization step: build q, estimate the bound, backpropagate, update.

``fit`` is a thin loop over this function; call it directly for custom loops.
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
    ``StepInfo.finite``. Gaussian families with an ELBO take the fused path of :mod:`.gaussian_step` (same
    values and gradients, about half the tensor operations).
    """
    if context is None and prior is None:
        from .gaussian_step import fused_step  # (a local import: gaussian_step imports StepInfo from here)

        info = fused_step(log_p, family, objective, optimizer)
        if info is not None:
            return info
    optimizer.zero_grad(set_to_none=True)
    est = objective.loss(family(context), log_p, prior)
    loss = est.loss
    finite = math.isfinite(loss.item())
    if finite:
        loss.backward()
        optimizer.step()
    return StepInfo(loss=loss.detach(), bound=est.bound, finite=finite)
