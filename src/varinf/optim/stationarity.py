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
window/16-th iteration later (cost O(64 D) each time: iterates are kept as at most 64 block sums).

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
MAX_BLOCKS = 64  # iterates are kept as at most this many block sums: memory O(64 (D + params)), not O(iterations)


def _t_quantile(z: float, dof: int) -> float:
    """Student-t quantile matching the normal quantile ``z`` (Cornish-Fisher expansion; ``dof`` >= 1)."""
    v = max(dof, 1)
    return z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)


class _Block:
    """Sums over consecutive iterates: their count, summed stats (2D) and summed parameters."""

    __slots__ = ("n", "params", "stats")

    def __init__(self, stats: Tensor, params: tuple[Tensor, ...]):
        self.n, self.stats, self.params = 1, stats, params

    def add(self, other: _Block) -> None:
        self.n += other.n
        self.stats = self.stats + other.stats
        self.params = tuple(a + b for a, b in zip(self.params, other.params))


class ParameterStationarity:
    """Stationarity of a sequence of parameter iterates (see the module docstring).

    ``update(*params, mean, sd)``: ``params`` are tensors to average (e.g. ``loc, cov``); ``mean`` and ``sd``
    ``(D,)`` are q's mean and sd, the quantities whose drift is measured (means in sds, log-sds).

    Memory does not grow with the number of iterates: they are summed into blocks of 1, 2, 4, ... consecutive
    iterates (adjacent blocks merge when there are more than ``MAX_BLOCKS``), so a batch mean is a sum of whole
    blocks. Up to ``MAX_BLOCKS`` iterates every block is one iterate."""

    def __init__(self, tol: float = 0.05, min_window: int = 4, noise: float | None = None):
        self.tol, self.min_window = float(tol), int(min_window)
        self.noise = self.tol / 2 if noise is None else float(noise)
        self._blocks: list[_Block] = []
        self._size = 1  # iterates per full block
        self.count = 0
        self.reason = ""
        self.stationary = False
        self.noisy = False  # the last test found no drift, only too much noise to stop

    @property
    def window(self) -> int:
        """Iterates in the window the test looks at (about the last half)."""
        return sum(b.n for b in self._window_blocks())

    @property
    def ready(self) -> bool:
        return self.count >= self.min_window

    def _append(self, block: _Block) -> None:
        last = self._blocks[-1] if self._blocks else None
        if last is not None and last.n < self._size:
            last.add(block)
        else:
            self._blocks.append(block)
        if len(self._blocks) > MAX_BLOCKS:  # merge neighbours: blocks of twice the size
            merged = []
            for i in range(0, len(self._blocks), 2):
                b = self._blocks[i]
                if i + 1 < len(self._blocks):
                    b.add(self._blocks[i + 1])
                merged.append(b)
            self._blocks = merged
            self._size *= 2

    def _window_blocks(self) -> list[_Block]:
        """The last blocks holding at least max(min_window, count // 2) iterates."""
        need, got, i = max(self.min_window, self.count // 2), 0, len(self._blocks)
        while i > 0 and got < need:
            i -= 1
            got += self._blocks[i].n
        return self._blocks[i:]

    def update(self, *args: Tensor) -> bool:
        *params, mean, sd = args
        stats = torch.cat([mean.detach(), sd.detach().log()]).double()
        self._append(_Block(stats, tuple(p.detach().clone() for p in params)))
        self.count += 1
        blocks = self._window_blocks()
        n, t = sum(b.n for b in blocks), self.count
        if t < 2 * self.min_window or (t % max(1, n // 16)):
            return False
        k = min(BATCHES, len(blocks))
        per = len(blocks) // k
        used = blocks[len(blocks) - k * per :]
        counts = torch.tensor([sum(b.n for b in used[j * per : (j + 1) * per]) for j in range(k)], dtype=torch.float64)
        sums = torch.stack([sum(b.stats for b in used[j * per : (j + 1) * per]) for j in range(k)])  # (k, 2D)
        D = sums.shape[1] // 2
        last = blocks[-1].stats / blocks[-1].n
        scale = torch.cat([last[D:].exp(), torch.ones(D, dtype=sums.dtype)])  # means in sds, log-sds as is
        bm = sums / counts[:, None] / scale  # batch means (k, 2D)
        c = torch.arange(k, dtype=bm.dtype) - (k - 1) / 2
        slope = (c[:, None] * bm).sum(0) / c.square().sum()
        resid = bm - bm.mean(0) - slope * c[:, None]
        s = (resid.square().sum(0) / max(k - 2, 1)).sqrt()  # noise of a batch mean, the trend removed
        z = _t_quantile(3.0, k - 2)  # "3 standard errors", widened for a noise level estimated from k batches
        drift = slope.abs() * (k - 1)  # change across the window along the fitted trend
        se_drift = s / c.square().sum().sqrt() * (k - 1)
        se_avg = s / math.sqrt(k) * (z / 3.0)
        self.noisy = False
        if not bool(torch.isfinite(drift).all() and torch.isfinite(se_avg).all()):
            self.reason = "q's moments are not finite (a variance collapsed to zero or overflowed)"
            return False
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
        blocks = self._window_blocks()
        n = sum(b.n for b in blocks)
        return tuple(sum(ps) / n for ps in zip(*(b.params for b in blocks)))


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
