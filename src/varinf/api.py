"""``varinf.fit``: the posterior-VI engine (:func:`varinf.optim.fit`) plus diagnostics on every fit.

::

    varinf.fit(model, ...) = varinf.optim.fit(model, ...)            # optimize q
                             -> varinf.diagnostics.diagnose(result)   # PSIS k-hat, log p(x), warnings
                             -> result.diagnostics                    # shown by result.summary()

``varinf.optim.fit`` stays the undiagnosed engine for loops that fit many times.
"""

from __future__ import annotations

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
    **kwargs,
) -> FitResult:
    r"""Fit a variational approximation q to ``model``'s posterior, then check it.

    Every argument except the two below is passed to :func:`varinf.optim.fit` (``max_steps``, ``lr``,
    ``tol_rel_obj``, ``seed``, ``dtype``, family keyword arguments, ...).

    Args:
        diagnose: draw ``diagnose_draws`` points from q after the fit and attach a
            :class:`~varinf.diagnostics.Diagnostics` to ``result.diagnostics``: PSIS :math:`\hat k` with its
            thresholds explained, PSIS effective sample size, importance-sampled :math:`\log p(x)` with its
            Monte Carlo standard error, and a :class:`~varinf.diagnostics.DiagnosticWarning` when
            :math:`\hat k` says q is unreliable (Yao et al. 2018, arXiv:1802.02538).
        diagnose_draws: ``S``; at least 2200 for the full 0.7 threshold (see :func:`~varinf.diagnostics.khat_threshold`).

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
        result.diagnostics = _diagnose(result, diagnose_draws, seed=kwargs.get("seed", 0))
    return result
