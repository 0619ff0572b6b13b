r"""``LogEvidence``: what every evidence method returns (importance sampling, bridge sampling, AIS).

One named result for all methods: the estimate of :math:`\log p(x)` in nats, its Monte Carlo standard error,
whether the method's own checks say to trust the two, and the cost in model gradient evaluations. IS and
AIS average unbiased weights, so their log estimates are lower bounds in expectation; bridge sampling is a
ratio estimator without a sign guarantee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["METHOD_NAMES", "LogEvidence"]


METHOD_NAMES = {
    "is": "importance sampling",
    "bridge": "bridge sampling",
    "ais": "annealed importance sampling",
}


@dataclass(frozen=True)
class LogEvidence:
    r"""An estimate of :math:`\log p(x)` (nats) with its error estimate and whether to trust them.

    Attributes:
        estimate: the point estimate.
        se: Monte Carlo standard error of ``estimate`` (meaningful only when ``reliable``).
        num_draws: draws that entered the estimate (IS: S; AIS: particles; bridge: posterior draws).
        ess: effective sample size of the final weights (IS, AIS) or of the posterior draws (bridge).
        proposal: what the draws came from (``"q"``, ``"prior"``, ...).
        method: ``"is"``, ``"bridge"`` or ``"ais"``.
        reliable: whether ``estimate ± 2 se`` can be trusted (the method's own check, see ``note``).
        khat: Pareto :math:`\hat k` of the final weights (IS, AIS; NaN for bridge).
        grad_evals: model gradient evaluations spent (one per draw per gradient; IS spends none).
        density_evals: model log-density evaluations without gradients.
        note: why the estimate is (not) trusted, in words.
    """

    estimate: float
    se: float
    num_draws: int
    ess: float
    proposal: str = "q"
    method: str = "is"
    reliable: bool = True
    khat: float = math.nan
    grad_evals: int = 0
    density_evals: int = 0
    note: str = ""

    @property
    def name(self) -> str:
        return METHOD_NAMES.get(self.method, self.method)

    @property
    def is_lower_bound(self) -> bool:
        """IS and AIS average unbiased weights, so :math:`E[\\log\\hat Z] \\le \\log p(x)`; bridge is a ratio
        estimator with no sign guarantee."""
        return self.method in ("is", "ais")

    def interval(self, z: float = 2.0) -> tuple[float, float]:
        """``estimate ± z se``; ``(-inf, inf)`` when not reliable (no honest width is known)."""
        if not self.reliable or not math.isfinite(self.se):
            return (-math.inf, math.inf)
        return (self.estimate - z * self.se, self.estimate + z * self.se)

    def lower_bound(self, prob: float = 0.95) -> float:
        r""":math:`\log p(x) \ge` this with probability at least ``prob``, from Markov's inequality on the unbiased
        :math:`\hat Z` (IS, AIS; valid however heavy the weights' tail): ``estimate - log(1/(1-prob))``."""
        if not self.is_lower_bound:
            raise ValueError(f"{self.name} has no one-sided guarantee; use interval()")
        return self.estimate - math.log(1.0 / (1.0 - prob))

    def describe(self) -> str:
        """One line for summaries: ``± se`` when reliable, else the bound and its direction."""
        how = f"{self.name}, {self.num_draws} {'particles' if self.method == 'ais' else 'draws'}"
        cost = f", {self.grad_evals} gradient evaluations" if self.grad_evals else ""
        if self.reliable:
            return f"{self.estimate:.4f} ± {self.se:.4f} nats ({how}{cost}; {self.note})"
        if self.is_lower_bound:
            return (
                f"≥ about {self.estimate:.2f} nats: UNRELIABLE ({how}{cost}; {self.note}); no error bar is given because "
                f"the sample variance cannot see the weights' tail. This estimate is a lower bound in expectation "
                f"(E[log p̂] ≤ log p(x)), and log p(x) ≥ {self.lower_bound():.2f} with probability ≥ 95% (Markov)"
            )
        return f"{self.estimate:.2f} nats: UNRELIABLE ({how}{cost}; {self.note})"

    def short(self) -> str:
        """The summary's one line (no unit: the ELBO line above says nats): ``-31.4123 ± 0.0123 (bridge
        sampling)``, or the lower bound an unreliable IS/AIS estimate still is, or the estimate marked unreliable."""
        if self.reliable:
            return f"{self.estimate:.4f} ± {self.se:.4f} ({self.name})"
        if self.is_lower_bound and math.isfinite(self.estimate):
            why = f"k-hat {self.khat:.2f}" if math.isfinite(self.khat) else "unreliable"
            return f"≥ {self.estimate:.2f} ({self.name}: a lower bound, no error bar at {why})"
        return f"{self.estimate:.2f} ({self.name}: UNRELIABLE, {self.note})"

    def __str__(self) -> str:
        return self.describe()
