r"""``LeanAdam``: Adam (Kingma & Ba 2015, arXiv:1412.6980) with as little per-step overhead as possible.

Posterior-VI steps are tiny (a few dozen parameters), so ``torch.optim.Adam.step``'s Python bookkeeping
(hooks, grouping by device, profiler records: ~150 µs) costs more than the arithmetic. This class keeps
flat lists and calls the fused kernel ``torch._fused_adam_`` directly (one op for all parameters),
falling back to ``torch._foreach_*`` ops where the fused kernel is unavailable. Same update rule and
defaults as ``torch.optim.Adam``; no weight decay or amsgrad. Use any ``torch.optim`` optimizer instead
through ``fit(optimizer=lambda params, lr: ...)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..utils.torch_private import (
    HAVE_FUSED_ADAM,
    foreach_add_,
    foreach_addcdiv_,
    foreach_addcmul_,
    foreach_div,
    foreach_lerp_,
    foreach_mul_,
    foreach_sqrt,
    fused_adam_,
)

__all__ = ["LeanAdam"]


class LeanAdam:
    """Minimal Adam with the ``zero_grad`` / ``step`` interface of a torch optimizer."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params: list[Tensor] = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps = float(lr), betas, float(eps)
        self.exp_avgs = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
        # one step count per device, shared by its parameters (the fused kernel only reads them); with one
        # device it advances by a cached 0-dim 1 (a Python 1 costs a scalar-tensor conversion each step)
        counts: dict = {}
        self.steps = [counts.setdefault(p.device, torch.zeros((), dtype=torch.float32, device=p.device))
                      for p in self.params]  # fmt: skip
        self._counts = list(counts.values())
        self._one = self._counts[0].new_ones(()) if len(self._counts) == 1 else None
        self.t = 0
        self._fused = HAVE_FUSED_ADAM and all(
            p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.float64) for p in self.params
        )

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        params = [p for p in self.params if p.grad is not None]
        if len(params) != len(self.params):
            # some parameter got no gradient this step: fall back to the general path for simplicity
            return self._step_foreach()
        grads = [p.grad for p in params]
        self.t += 1
        if self._fused:  # (the fused kernel's bias corrections read self._counts, which stay equal to self.t)
            if self._one is not None:
                self._counts[0].add_(self._one)
            else:
                foreach_add_(self._counts, 1)
            fused_adam_(
                params, grads, self.exp_avgs, self.exp_avg_sqs, [], self.steps,
                lr=self.lr, beta1=self.betas[0], beta2=self.betas[1], weight_decay=0.0, eps=self.eps,
                amsgrad=False, maximize=False, grad_scale=None, found_inf=None,
            )  # fmt: skip
            return None
        return self._update(params, grads, self.exp_avgs, self.exp_avg_sqs)

    def _step_foreach(self) -> None:
        idx = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not idx:
            return
        self.t += 1
        foreach_add_(self._counts, 1)  # (one count for all parameters: the fused path reads it)
        self._update(
            [self.params[i] for i in idx],
            [self.params[i].grad for i in idx],
            [self.exp_avgs[i] for i in idx],
            [self.exp_avg_sqs[i] for i in idx],
        )

    def _update(self, params, grads, m, v) -> None:
        b1, b2 = self.betas
        foreach_lerp_(m, grads, 1 - b1)
        foreach_mul_(v, b2)
        foreach_addcmul_(v, grads, grads, 1 - b2)
        bc1, bc2 = 1 - b1**self.t, 1 - b2**self.t
        denom = foreach_sqrt(foreach_div(v, bc2))
        foreach_add_(denom, self.eps)
        foreach_addcdiv_(params, m, denom, -self.lr / bc1)
