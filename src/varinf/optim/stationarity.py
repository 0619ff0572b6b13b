r"""When has a stochastic fit stopped moving? Compare q's drift with its own Monte Carlo noise.

The iterates :math:`q_t` of a method driven by fresh draws each iteration (BaM, an ADVI polish) settle into
fluctuating around a fixed point. :class:`ParameterStationarity` keeps q's means and standard deviations per
iterate and looks at the window of the last half of the iterates (at least ``2 · min_window``), cut into
``BATCHES`` consecutive batches whose means absorb the iterates' autocorrelation (batch means, as in MCMC
output analysis). A straight line is fitted to the batch means; its residuals measure the noise, so a
steady trend cannot pass for noise. Per coordinate, in units of q's sd (means) or as is (log-sds):

- *drift*: does the fitted line change by more than 3 of its standard errors (a Student-t quantile for the
  few batches of a short window) plus ``tol``/4 across the window? Then q is still moving.
- *noise*: is the standard error of the window's average at most ``noise`` (default ``tol``/2)? Otherwise
  more iterations are needed to average the noise down.

Both in place: stationary; :meth:`ParameterStationarity.average` returns the window's average, whose Monte
Carlo error is about that standard error. A Gaussian target fitted by BaM has no scatter at all, so the run
stops after ``2 · min_window`` iterations. The test runs at every iteration early on and at about every
window/16-th iteration later (cost O(window · D) each time).

Also here: :func:`scores`, one batched evaluation of the log density and its gradient.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ParameterStationarity", "Schedule", "closed_form", "scores"]


def closed_form(log_p):
    """``model.log_density_and_score`` when ``log_p`` is ``model.log_density`` itself, else ``None``: the value
    and gradient without autograd, for models that know them (closed-form scores, foreign engines); it may
    still return ``None`` for a batch it does not handle, meaning: use autograd."""
    owner = getattr(log_p, "__self__", None)
    fn = getattr(owner, "log_density_and_score", None)
    return fn if fn is not None and log_p == owner.log_density else None


def scores(log_density: Callable[[Tensor], Tensor], dtype: torch.dtype | None = None):
    """``f(z) -> (log p(z), ∇ log p(z))`` for a batch ``z`` ``(B, D)``: one forward and one backward pass, or
    one call of the model's :meth:`~varinf.models.Model.log_density_and_score` where it has one.

    With ``dtype``, the model is evaluated in that dtype and the results returned in ``z``'s."""
    closed = closed_form(log_density)

    def f(z: Tensor) -> tuple[Tensor, Tensor]:
        if closed is not None:
            both = closed(z if dtype is None else z.to(dtype))
            if both is not None:
                return both[0].detach().to(z.dtype), both[1].detach().to(z.dtype)
        x = (z if dtype is None else z.to(dtype)).detach().requires_grad_(True)
        with torch.enable_grad():
            lp = log_density(x)
            (g,) = torch.autograd.grad(lp.sum(), x)
        return lp.detach().to(z.dtype), g.to(z.dtype)

    return f


BATCHES = 8


def _t_quantile(z: float, dof: int) -> float:
    """Student-t quantile matching the normal quantile ``z`` (Cornish-Fisher expansion; ``dof`` >= 1)."""
    v = max(dof, 1)
    return z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)


class ParameterStationarity:
    """Stationarity of a sequence of parameter iterates (see the module docstring).

    ``update(*params, mean, sd)``: ``params`` are tensors to average (e.g. ``loc, cov``); ``mean`` and ``sd``
    ``(D,)`` are q's mean and sd, the quantities whose drift is measured (means in sds, log-sds)."""

    def __init__(self, tol: float = 0.05, min_window: int = 4, noise: float | None = None):
        self.tol, self.min_window = float(tol), int(min_window)
        self.noise = self.tol / 2 if noise is None else float(noise)
        self.params: list[tuple[Tensor, ...]] = []
        self.stats: list[Tensor] = []
        self.reason = ""
        self.stationary = False
        self.noisy = False  # the last test found no drift, only too much noise to stop

    @property
    def window(self) -> int:
        return max(self.min_window, len(self.stats) // 2)

    @property
    def ready(self) -> bool:
        return len(self.stats) >= self.min_window

    def update(self, *args: Tensor) -> bool:
        *params, mean, sd = args
        self.params.append(tuple(p.detach().clone() for p in params))
        self.stats.append(torch.cat([mean.detach(), sd.detach().log()]).double())
        n, t = self.window, len(self.stats)
        if t < 2 * self.min_window or (t % max(1, n // 16)):
            return False
        x = torch.stack(self.stats[-n:])  # (n, 2D): means, then log-sds
        D = x.shape[1] // 2
        scale = torch.cat([x[-1, D:].exp(), torch.ones(D, dtype=x.dtype)])  # means in sds, log-sds as is
        k = min(BATCHES, n)
        b = n // k
        bm = (x[n - k * b :] / scale).reshape(k, b, -1).mean(1)  # batch means (k, 2D)
        c = torch.arange(k, dtype=bm.dtype) - (k - 1) / 2
        slope = (c[:, None] * bm).sum(0) / c.square().sum()
        resid = bm - bm.mean(0) - slope * c[:, None]
        s = (resid.square().sum(0) / max(k - 2, 1)).sqrt()  # noise of a batch mean, the trend removed
        z = _t_quantile(3.0, k - 2)  # "3 standard errors", widened for a noise level estimated from k batches
        drift = slope.abs() * (k - 1)  # change across the window along the fitted trend
        se_drift = s / c.square().sum().sqrt() * (k - 1)
        se_avg = s / math.sqrt(k) * (z / 3.0)
        self.noisy = False
        if bool((drift > z * se_drift + self.tol / 4).any()):
            self.reason = f"q still drifting ({drift.max().item():.3f} sd over the last {n} iterations)"
            return False
        if se_avg.max().item() > self.noise:
            self.reason = f"Monte Carlo noise of q's average {se_avg.max().item():.3f} sd > {self.noise:g}"
            self.noisy = True
            return False
        self.reason = (
            f"q stationary over the last {n} iterations: drift within noise, average known to "
            f"{se_avg.max().item():.3f} sd"
        )
        self.stationary = True
        return True

    def average(self) -> tuple[Tensor, ...]:
        """The average of each parameter over the window."""
        window = self.params[-self.window :]
        return tuple(torch.stack(ps).mean(0) for ps in zip(*window))


@dataclass(frozen=True)
class Schedule:
    """How long a stationarity-stopped iteration (BaM, low-rank BaM) runs: at most ``max_iter`` iterations,
    stationary within ``tol`` sds after at least ``2 min_iter`` iterations with an average known to ``noise``
    (default ``tol/2``); ``lambda0`` scales BaM's step size."""

    max_iter: int
    lambda0: float = 1.0
    tol: float = 0.05
    min_iter: int = 3
    noise: float | None = None

    def monitor(self) -> ParameterStationarity:
        return ParameterStationarity(tol=self.tol, min_window=self.min_iter, noise=self.noise)
