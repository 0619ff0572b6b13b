"""``StepLoop``: runs :func:`~varinf.optim.step.step` repeatedly with the bookkeeping every phase of
``fit`` shares: the ELBO trace and window means, non-finite recovery, checkpoints, progress bar."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..errors import FitError
from .averaging import IterateAverage
from .convergence import RelativeChange
from .step import step

__all__ = ["StepLoop"]


class StepLoop:
    """Mutable state of one optimization run (steps taken, trace, step size, optimizer).

    Non-finite bounds: an isolated one is skipped (no update); three in a row send the parameters back to
    the last finite checkpoint, reset the optimizer and halve the step size; more than ``max_recoveries``
    such step-backs raise :class:`FitError`.
    """

    def __init__(self, log_p: Callable[[Tensor], Tensor], family: nn.Module, objective, make_opt, lr: float,
                 window: int, name: str, max_recoveries: int = 10, bar=None, callback=None):  # fmt: skip
        self.log_p, self.family, self.objective, self.make_opt = log_p, family, objective, make_opt
        self.lr, self.window, self.name, self.max_recoveries = float(lr), window, name, max_recoveries
        self.bar, self.callback = bar, callback
        self.opt = make_opt(list(family.parameters()), self.lr)
        self.trace: list[float] = []
        self.window_means: list[float] = []
        self.t = 0
        self.recoveries = self.skipped = self._consecutive = 0
        self._window_start = 0
        self.checkpoint = self._snapshot()

    def _snapshot(self) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in self.family.state_dict().items()}

    def set_lr(self, lr: float) -> None:
        """Change the step size and restart the optimizer's moment estimates."""
        self.lr = float(lr)
        self.opt = self.make_opt(list(self.family.parameters()), self.lr)

    def run(self, n: int, detector: RelativeChange | None = None, averager: IterateAverage | None = None) -> bool:
        """Take up to ``n`` finite steps; stop early (returning True) when ``detector`` reports convergence."""
        end = self.t + n
        while self.t < end:
            info = step(self.log_p, self.family, self.objective, self.opt)
            if not info.finite:
                self._non_finite()
                continue
            self._consecutive = 0
            self.trace.append(info.bound.item() if info.bound.dim() == 0 else info.bound.mean().item())
            self.t += 1
            if averager is not None:
                averager.update()
            if (self.t - self._window_start) == self.window:
                if self._close_window(detector):
                    return True
        return False

    def _close_window(self, detector: RelativeChange | None) -> bool:
        w = torch.tensor(self.trace[self._window_start : self.t], dtype=torch.float64)
        self._window_start = self.t
        wm = w.mean().item()
        self.window_means.append(wm)
        if all(bool(torch.isfinite(p).all()) for p in self.family.parameters()):
            self.checkpoint = self._snapshot()
        if self.bar is not None:
            self.bar.update(len(w))
            self.bar.set_postfix(elbo=f"{wm:.4g}", lr=f"{self.lr:.3g}")
        if self.callback is not None:
            self.callback(self.t, wm)
        return detector is not None and detector.update(wm, w.var().item(), len(w))

    def _non_finite(self) -> None:
        self.skipped += 1
        self._consecutive += 1
        if self._consecutive < 3:
            return
        self._consecutive = 0
        self.recoveries += 1
        if self.recoveries > self.max_recoveries:
            raise FitError(
                f"{self.name}: the bound stayed non-finite after {self.max_recoveries} step-backs (step {self.t}, "
                f"lr now {self.lr:g}). The log joint is probably NaN or -inf somewhere q puts mass; check "
                "supports and data, or try a smaller lr / init closer to the posterior."
            )
        self.family.load_state_dict(self.checkpoint)
        self.set_lr(self.lr / 2)
