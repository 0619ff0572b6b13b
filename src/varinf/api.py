"""``varinf.fit``: the one public way to fit — a fitting method (:mod:`varinf.optim`) plus diagnostics.

::

    varinf.fit(model, family="auto", objective=None, method="auto", **options)
      = varinf.optim.optimize(...)              # fit q with the chosen method (auto: Pathfinder -> BaM -> ...)
        -> varinf.diagnostics.diagnose(result)  # PSIS k-hat, log p(x), warnings
        -> result.diagnostics                   # shown by result.summary(), PSIS-corrected when k-hat allows

``diagnose=False`` skips the diagnostics (for loops that fit many times).
"""

from __future__ import annotations

from .diagnostics import diagnose as _diagnose
from .optim import FitConfig, FitResult, optimize

__all__ = ["fit"]


def fit(
    model,
    family="auto",
    objective=None,
    *,
    method: str = "auto",
    config: FitConfig | None = None,
    diagnose: bool = True,
    diagnose_draws: int = 4000,
    **options,
) -> FitResult:
    r"""Fit a variational approximation q to ``model``'s posterior, then check it.

    Args:
        model: a :class:`~varinf.models.Model`.
        family: ``"auto"`` (default: full rank up to 300 unconstrained dimensions, low rank above; mean-field
            when ADVI runs), ``"meanfield"``, ``"fullrank"``, ``"lowrank"``, ``"flow"`` (or an alias such as
            ``"mf"``), or a family module over ``model.dim`` unconstrained dimensions.
        objective: :class:`~varinf.objectives.ELBO` (ADVI's default, one reparameterized particle), ``IWAE``,
            ``Renyi``. Giving one means ADVI (the only method that optimizes a chosen bound).
        method: a key of :data:`varinf.optim.METHODS`: ``"auto"`` (default: a Pathfinder start, then
            Batch-and-Match and the family's own polish, stopped when q stops moving relative to its Monte
            Carlo noise; plain ADVI when ADVI-only settings such as ``lr`` or ``objective`` are given),
            ``"advi"``, ``"bam"``, ``"pathfinder"``. With ``auto`` and ``pathfinder`` the summary reports
            PSIS-corrected estimates whenever k-hat allows.
        config: a :class:`~varinf.optim.FitConfig` with every setting of the fit. Keyword ``options`` that
            name its fields (``max_steps``, ``lr``, ``tol_rel_obj``, ``init``, ``seed``, ``dtype``, ``device``,
            ``progress``, ...) override it; other keywords go to the family (e.g. ``rank=3``).
        diagnose: draw ``diagnose_draws`` points from q after the fit and attach a
            :class:`~varinf.diagnostics.Diagnostics` to ``result.diagnostics``: PSIS :math:`\hat k` with its
            thresholds explained, PSIS effective sample size, importance-sampled :math:`\log p(x)` with its
            Monte Carlo standard error, and a :class:`~varinf.diagnostics.DiagnosticWarning` when
            :math:`\hat k` says q is unreliable (Yao et al. 2018, arXiv:1802.02538).
        diagnose_draws: ``S``; at least 2200 for the full 0.7 threshold (see :func:`~varinf.diagnostics.khat_threshold`).

    Returns:
        :class:`~varinf.optim.FitResult`; ``result.summary()`` ends with the diagnostic lines.

    Raises:
        ValueError: an invalid option, naming it (``lr must be > 0``, ``max_steps must be an integer >= 1``).

    Example:
        >>> import torch, varinf
        >>> from varinf.models import LinearRegression
        >>> res = varinf.fit(LinearRegression.synthetic(), progress=False)
        >>> res.diagnostics.verdict, res.method, res.route
        ('good', 'auto', ('pathfinder', 'bam'))
    """
    result = optimize(model, family, objective, method=method, config=config, **options)
    if diagnose:
        seed = options.get("seed", config.seed if config is not None else 0)
        result.diagnostics = _diagnose(result, diagnose_draws, seed=seed, corrected=result.report == "psis")
    return result
