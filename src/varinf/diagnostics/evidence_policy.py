r"""``evidence``: :math:`\log p(x)` for a fitted q by importance sampling, bridge sampling or AIS.

=========  =====================================================  ==========================================
method     how                                                    error estimate trusted when
=========  =====================================================  ==========================================
``is``     draws of q weighted by :math:`p/q` (:mod:`.importance`)  PSIS :math:`\hat k < 0.25` (estimable variance)
``bridge`` HMC posterior draws started from q, Meng–Wong bridge    chains mixed (split :math:`\hat R`), halves
           to a Gaussian proposal (:mod:`.bridge`)                 agree
``ais``    q annealed to the posterior with HMC moves (:mod:`.ais`)  :math:`\hat k < 0.25` of the AIS weights
=========  =====================================================  ==========================================

Cost in model gradient evaluations: IS none (``num_draws`` log densities); bridge and AIS spend ``budget``.

**Default policy** (``method="auto"``, what :func:`varinf.fit` runs after every fit): importance sampling
from the diagnostic draws, always; when its error bar cannot be trusted (:math:`\hat k \ge 0.25`), bridge
sampling if the model is small (``dim ≤ 100``) and the budget allows at least ``MIN_BUDGET`` gradient
evaluations. :func:`varinf.fit`'s budget defaults to the fit's own gradient count (capped at 20,000), so the
diagnostics never cost more gradients than the fit did; a fit cheaper than ``MIN_BUDGET`` reports the IS
estimate as the lower bound it is and says how to get an error bar. Bridge sampling is the upgrade because
on the calibration benchmark (``benchmarks/evidence_calibration.py``) it was the more accurate of the two at
equal cost; AIS is available on request.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from torch.distributions import Distribution

from ..models.subsample import EstimatedModel
from .annealed_importance import ais
from .bridge_sampling import bridge
from .evidence_result import METHOD_NAMES, LogEvidence
from .importance import ImportanceDraws, importance_draws, importance_log_evidence, log_evidence

__all__ = [
    "MAX_UPGRADE_DIM",
    "MIN_BUDGET",
    "EvidencePolicy",
    "ImportanceDraws",
    "LogEvidence",
    "evidence",
    "importance_draws",
    "importance_log_evidence",
    "log_evidence",
    "policy_evidence",
    "upgrade",
    "with_subsample_error",
]


@dataclass(frozen=True)
class EvidencePolicy:
    r"""How the diagnostics estimate :math:`\log p(x)`: ``method`` ``"auto"`` (importance sampling, upgraded to
    bridge sampling when that is unreliable and ``budget`` allows), ``"is"`` (never a gradient), ``"bridge"`` or
    ``"ais"`` (always), spending at most ``budget`` model gradient evaluations (``None``: the caller's default)."""

    method: str = "auto"
    budget: int | None = 0

    def __post_init__(self):
        if self.method not in ("auto", *METHOD_NAMES):
            raise ValueError(f"evidence must be 'auto', 'is', 'bridge' or 'ais', got {self.method!r}")
        b = self.budget
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 0):
            raise ValueError(f"evidence_budget must be an integer >= 0, got {b!r}")


MIN_BUDGET = 2_000  # gradient evaluations below which bridge sampling is not attempted by "auto"
MAX_UPGRADE_DIM = 100  # "auto" upgrades IS only for models this small (the curvature costs 2D gradients)


def evidence(
    model,
    q: Distribution | None = None,
    method: str = "auto",
    *,
    budget: int = 20_000,
    num_draws: int = 4000,
    seed: int | None = None,
    **options,
) -> LogEvidence:
    r"""Estimate :math:`\log p(x)` (nats) with q as the starting point.

    Args:
        model: a :class:`~varinf.models.Model`, or a :class:`~varinf.optim.FitResult` (then q is its
            fitted family and ``q`` must be None).
        q: a Distribution over the model's unconstrained space (event shape ``(model.dim,)``).
        method: ``"is"``, ``"bridge"``, ``"ais"`` or ``"auto"`` (IS, upgraded to bridge sampling when IS is
            unreliable; see the module docstring).
        budget: model gradient evaluations bridge sampling or AIS may spend.
        num_draws: draws of q for importance sampling.
        seed: seeds every draw (the global RNG is left untouched); None: fresh randomness.
        options: passed to :func:`~.bridge.bridge` or :func:`~.ais.ais` (``num_chains``, ``num_particles``,
            ``start``, ...).

    Returns:
        :class:`~varinf.diagnostics.evidence_result.LogEvidence`: ``estimate``, ``se``, ``reliable``,
        ``method``, ``grad_evals``, ``note``; ``str()`` gives one honest line.

    Example:
        >>> import torch, varinf
        >>> from varinf.models import LinearRegression
        >>> m = LinearRegression.correlated(rho=0.9, seed=0).double()
        >>> res = varinf.fit(m, family="meanfield", progress=False, evidence="is")
        >>> ev = varinf.evidence(res, method="bridge", seed=0)
        >>> ev.reliable and abs(ev.estimate - m.exact_log_evidence()) < 4 * ev.se
        True
    """
    if q is None:
        if not hasattr(model, "posterior") or not hasattr(model, "model"):
            raise TypeError("evidence(model, q): give q, or pass a FitResult as the first argument")
        model, q = model.model, model.posterior()
    if method not in ("auto", *METHOD_NAMES):
        raise ValueError(f"unknown method {method!r}; use 'auto', 'is', 'bridge' or 'ais'")
    if method == "bridge":
        return bridge(model, q, budget, seed=seed, **options)
    if method == "ais":
        return ais(model, q, budget, seed=seed, **options)
    est = importance_log_evidence(model, q, num_draws, seed, label="q")
    return est if method == "is" else upgrade(model, q, est, budget, seed, **options)


def upgrade(model, q: Distribution, is_estimate: LogEvidence, budget: int, seed: int | None = None, **options):
    """The ``"auto"`` policy after importance sampling: keep ``is_estimate`` when it is reliable, the model is
    larger than ``MAX_UPGRADE_DIM`` or ``budget < MIN_BUDGET``; otherwise run bridge sampling with ``budget``."""
    if is_estimate.reliable or model.dim > MAX_UPGRADE_DIM or budget < MIN_BUDGET:
        return is_estimate
    return bridge(model, q, budget, seed=seed, **options)


def policy_evidence(model, q: Distribution, is_estimate: LogEvidence, policy: EvidencePolicy, seed: int | None):
    """What the diagnostics report under ``policy``: ``is_estimate`` (``"is"``), :func:`upgrade` (``"auto"``), or
    bridge sampling / AIS with ``policy.budget`` gradients. ``model`` may be the large-data
    :class:`~varinf.models.subsample.EstimatedModel` the draws were evaluated with: then ``"auto"`` spends no
    gradients (each would be a pass over every row), and bridge/AIS run on the model itself, whose chunked
    log density keeps memory within its ``max_memory`` at any N."""
    method, budget = policy.method, policy.budget or 0
    if method == "is":
        return is_estimate
    exact = model.model if isinstance(model, EstimatedModel) else model
    if method == "auto":
        return is_estimate if exact is not model else upgrade(model, q, is_estimate, budget, seed)
    return evidence(exact, q, method, budget=budget, seed=seed)


def with_subsample_error(ev: LogEvidence, model) -> LogEvidence:
    r"""Large data: log densities estimated from a subsample (``model`` an
    :class:`~varinf.models.subsample.EstimatedModel`) err by at most ``max_se`` per draw, an error shared by the
    weighted mean :math:`\log\hat Z`; it is added to the Monte Carlo se in quadrature. Other models: ``ev``."""
    if not isinstance(model, EstimatedModel):
        return ev
    extra = model.estimator.max_se
    note = f"{ev.note}; + {extra:.3g} nats subsample error" if ev.note else f"subsample error {extra:.3g} nats"
    return dataclasses.replace(ev, se=math.hypot(ev.se, extra), note=note)
