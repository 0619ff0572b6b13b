"""``varinf.fit``: the posterior-VI engine (:func:`varinf.optim.fit`) plus diagnostics on every fit.

::

    varinf.fit(model, ...) = varinf.optim.fit(model, ...)            # optimize q
                             -> varinf.diagnostics.diagnose(result)   # PSIS k-hat, log p(x), warnings
                             -> result.diagnostics                    # shown by result.summary()
                                result.diagnostics_time               # its seconds (not in wall_time)

``varinf.optim.fit`` stays the undiagnosed engine for loops that fit many times.
"""

from __future__ import annotations

import time

from .diagnostics import diagnose as _diagnose
from .optim import FitResult
from .optim import fit as _engine_fit

__all__ = ["fit"]


def fit(
    model,
    family="meanfield",
    objective=None,
    *,
    diagnose: bool = True,
    diagnose_draws: int = 4000,
    evidence: str = "auto",
    evidence_budget: int | None = None,
    **kwargs,
) -> FitResult:
    r"""Fit a variational approximation q to ``model``'s posterior, then check it.

    Every argument except the four below is passed to :func:`varinf.optim.fit` (``max_steps``, ``lr``,
    ``tol_rel_obj``, ``seed``, ``dtype``, family keyword arguments, ...).

    Args:
        diagnose: draw ``diagnose_draws`` points from q after the fit and attach a
            :class:`~varinf.diagnostics.Diagnostics` to ``result.diagnostics``: PSIS :math:`\hat k` with its
            thresholds explained, PSIS effective sample size, importance-sampled :math:`\log p(x)` with its
            Monte Carlo standard error, and a :class:`~varinf.diagnostics.DiagnosticWarning` when
            :math:`\hat k` says q is unreliable (Yao et al. 2018, arXiv:1802.02538).
        diagnose_draws: ``S``; at least 2200 for the full 0.7 threshold (see :func:`~varinf.diagnostics.khat_threshold`).
        evidence: how :math:`\log p(x)` is estimated: ``"auto"`` (importance sampling with q, with an error bar
            only when :math:`\hat k < 0.25`; when it is unreliable and the model has at most 100 unconstrained
            dimensions, bridge sampling with ``evidence_budget`` gradients if that is at least 2,000), ``"is"``
            (never spend gradients), ``"bridge"`` or ``"ais"`` (always, with ``evidence_budget``). See
            :func:`varinf.evidence`.
        evidence_budget: model gradient evaluations the evidence may spend; default: the fit's own count,
            capped at 20,000 (the diagnosis never costs more gradients than the fit).

    Returns:
        :class:`~varinf.optim.FitResult`; ``result.summary()`` ends with the diagnostic lines.

    Example:
        >>> import torch, varinf
        >>> from varinf.models import LinearRegression
        >>> res = varinf.fit(LinearRegression.synthetic(), family="fullrank", max_steps=3000, progress=False)
        >>> res.diagnostics.verdict
        'good'
    """
    result = _engine_fit(model, family, objective, **kwargs)
    if diagnose:
        t0 = time.perf_counter()
        if evidence in ("bridge", "ais") and evidence_budget is None:
            evidence_budget = 20_000
        result.diagnostics = _diagnose(
            result, diagnose_draws, seed=kwargs.get("seed", 0), evidence=evidence, evidence_budget=evidence_budget
        )
        result.diagnostics_time = time.perf_counter() - t0
    return result
