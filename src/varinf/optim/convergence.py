r"""Convergence detection on the ELBO, after Stan's ADVI (Kucukelbir et al. 2017, §3.3).

Every ``window`` steps the mean bound of the window is compared to the previous window's:
:math:`r_t = |\bar{\mathcal L}_t - \bar{\mathcal L}_{t-1}| / |\bar{\mathcal L}_t|`. The last ``buffer``
relative changes are kept; the run has converged when their mean or their median falls below the
threshold (Stan: "MEAN ELBO CONVERGED" / "MEDIAN ELBO CONVERGED").

Two changes from Stan:

- the threshold is ``max(tol_rel_obj, 3·se_t/|mean|)``, where ``se_t`` is the Monte Carlo standard error
  of the difference of two window means. Near the optimum the window means differ by noise alone; when
  the ELBO is small in magnitude (eight schools: about -32 nats) that noise is several percent of it and
  Stan's fixed 1% rule would never fire. Comparing to the noise says "no change we can detect".
- a slow steady climb (an ill-conditioned posterior crawled along a narrow valley) can hide below the
  noise of consecutive windows, so the buffer's second half must also not beat its first half by more
  than 3 standard errors (and ``tol_rel_obj`` relative).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field

__all__ = ["RelativeChange"]


@dataclass
class RelativeChange:
    """Stateful relative-ELBO-change detector.

    Args:
        tol_rel_obj: relative-change threshold (default 1e-3).
        buffer: how many relative changes to keep (``fit`` uses Stan's ``max(0.1·max_steps/window, 2)``).
    """

    tol_rel_obj: float = 1e-3
    buffer: int = 5
    means: list[float] = field(default_factory=list)
    changes: deque = field(default_factory=deque)
    floors: deque = field(default_factory=deque)
    var_of_means: deque = field(default_factory=deque)
    reason: str = ""
    _prev_var: float = 0.0

    def update(self, window_mean: float, window_var: float = 0.0, window_n: int = 1) -> bool:
        """Add a window's mean (and the variance of its per-step estimates); return True once converged."""
        var_of_mean = window_var / max(window_n, 1)
        if self.means:
            denom = abs(window_mean) if window_mean != 0 else 1.0
            self.changes.append(abs(window_mean - self.means[-1]) / denom)
            self.floors.append(3.0 * math.sqrt(var_of_mean + self._prev_var) / denom)
            while len(self.changes) > self.buffer:
                self.changes.popleft()
                self.floors.popleft()
        self.means.append(window_mean)
        self.var_of_means.append(var_of_mean)
        while len(self.var_of_means) > self.buffer + 1:
            self.var_of_means.popleft()
        self._prev_var = var_of_mean
        if len(self.changes) < self.buffer:
            return False
        if self._still_climbing():
            return False
        threshold = max(self.tol_rel_obj, statistics.fmean(self.floors))
        if statistics.fmean(self.changes) < threshold:
            self.reason = f"mean relative ELBO change below {threshold:.2g}"
            return True
        if statistics.median(self.changes) < threshold:
            self.reason = f"median relative ELBO change below {threshold:.2g}"
            return True
        return False

    def _still_climbing(self) -> bool:
        """Second half of the last ``buffer + 1`` window means significantly above the first half."""
        m = self.means[-len(self.var_of_means) :]
        v = list(self.var_of_means)
        h = len(m) // 2
        first, second = m[:h], m[-h:]
        gain = statistics.fmean(second) - statistics.fmean(first)
        se = math.sqrt(sum(v[:h]) / h**2 + sum(v[-h:]) / h**2)
        return gain > 3 * se and gain > self.tol_rel_obj * abs(statistics.fmean(second))
