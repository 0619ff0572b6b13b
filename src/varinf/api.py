"""``varinf.fit``: the one public way to fit — a fitting method (:mod:`varinf.optim`) plus diagnostics.

::

    varinf.fit(model, family="auto", objective=None, method="auto", **options)
      = varinf.optim.run_method(...)            # fit q with the chosen method (auto: Pathfinder -> BaM -> ...)
        -> varinf.diagnostics.diagnose(run)     # PSIS k-hat, log p(x), warnings
        -> varinf.optim.build_result(run, d)    # the FitResult, built once: result.diagnostics shown by
                                                # result.summary() (PSIS-corrected when k-hat allows),
                                                # result.diagnostics_time its seconds (not in wall_time)

``diagnose=False`` skips the diagnostics (for loops that fit many times).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

from .diagnostics import diagnose as _diagnose
from .diagnostics.evidence_policy import EvidencePolicy
from .optim import FitConfig, FitResult, build_result, run_method
from .optim.restore import load_result

__all__ = ["fit", "load"]


def fit(
    model,
    family="auto",
    objective=None,
    *,
    method: str = "auto",
    config: FitConfig | None = None,
    diagnose: bool = True,
    diagnose_draws: int = 4000,
    evidence: str = "auto",
    evidence_budget: int | None = None,
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
        method: a key of :data:`varinf.optim.METHODS` (or a method's options value, e.g.
            ``varinf.optim.BaMOptions(num_draws=32)``): ``"auto"`` (default: a Pathfinder start, then
            Batch-and-Match and the family's own polish, stopped when q stops moving relative to its Monte
            Carlo noise; plain ADVI when ADVI-only settings such as ``lr``, ``objective`` or ``batch_size`` are
            given: minibatches need stochastic gradients, and ``"bam"`` / ``"pathfinder"`` refuse them),
            ``"advi"``, ``"bam"``, ``"pathfinder"``. With ``auto`` and ``pathfinder`` the summary reports
            PSIS-corrected estimates whenever k-hat allows.
        config: a :class:`~varinf.optim.FitConfig`, the settings every method shares (``init``, ``seed``,
            ``dtype``, ``device``, ``progress``, ``threads``, ``check``); keyword ``options`` override it.
        options: each keyword goes where it is declared: ``FitConfig``; the method's options (``ADVIOptions``:
            ``max_steps``, ``lr``, ``tol_rel_obj``, ``batch_size``, ...; ``BaMOptions``: ``num_draws``, ``lambda0``;
            ``PathfinderOptions``: ``num_paths``, ``history``, ``elbo_draws``, ``max_iter``; ``AutoOptions``:
            ``max_steps``, ``tol_param`` and, meaning ADVI, any ADVI option); or the family's (``rank=3`` for
            ``"lowrank"``). Anything else raises :class:`~varinf.errors.OptionError` naming the option and who
            takes it, before the model is evaluated.
        diagnose: draw ``diagnose_draws`` points from q after the fit and attach a
            :class:`~varinf.diagnostics.Diagnostics` to ``result.diagnostics``: PSIS :math:`\hat k` with its
            thresholds explained, PSIS effective sample size, importance-sampled :math:`\log p(x)` with its
            Monte Carlo standard error, and a :class:`~varinf.diagnostics.DiagnosticWarning` when
            :math:`\hat k` says q is unreliable (Yao et al. 2018, arXiv:1802.02538).
        diagnose_draws: ``S``; at least 2200 for the full 0.7 threshold (see :func:`~varinf.diagnostics.khat_threshold`).
            With more than 50,000 data rows the draws' log densities are estimated from a subsample with a
            stated error (:mod:`varinf.models.subsample`).
        evidence: how :math:`\log p(x)` is estimated: ``"auto"`` (importance sampling with q, with an error bar
            only when :math:`\hat k < 0.25`; when it is unreliable and the model has at most 100 unconstrained
            dimensions, bridge sampling with ``evidence_budget`` gradients if that is at least 2,000), ``"is"``
            (never spend gradients), ``"bridge"`` or ``"ais"`` (always, with ``evidence_budget``). See
            :func:`varinf.evidence`.
        evidence_budget: model gradient evaluations the evidence may spend; default: the fit's own count,
            capped at 20,000 (the diagnosis never costs more gradients than the fit). With more than 50,000
            data rows ``"auto"`` spends none (each gradient then costs a pass over every row).

    Minibatches (``batch_size=B``, models with data): see :mod:`varinf.optim.minibatch`. Under ``torchrun``
    with a ``Model(..., distributed=True)`` every process runs this same call on its block of rows; results
    agree on every process, and only rank 0 shows progress and warnings.

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
    policy = EvidencePolicy(evidence, 20_000 if evidence in ("bridge", "ais") and evidence_budget is None
                            else evidence_budget)  # (checked before the fit runs)  # fmt: skip
    check = _Check(diagnose, diagnose_draws, policy, options.get("seed", config.seed if config is not None else 0))
    if diagnose and (isinstance(diagnose_draws, bool) or not isinstance(diagnose_draws, int) or diagnose_draws < 100):
        # checked before the fit, not after it: the diagnostics' Pareto-tail fit needs 100 draws at least
        raise ValueError(f"diagnose_draws must be an integer >= 100 (or diagnose=False), got {diagnose_draws!r}")
    if getattr(model, "distributed", False) and not model.plate.world.is_main:
        # every process runs the same fit in lockstep (collectives inside the model); rank 0 reports
        options["progress"] = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _fit(model, family, objective, method, config, check, options)
    return _fit(model, family, objective, method, config, check, options)


@dataclass(frozen=True)
class _Check:
    """What to do after the fit: diagnose or not, with how many draws, which evidence policy, which seed."""

    diagnose: bool
    draws: int
    policy: EvidencePolicy
    seed: int | None


def _fit(model, family, objective, method, config, check: _Check, options) -> FitResult:
    run = run_method(model, family, objective, method=method, config=config, **options)
    if not check.diagnose:
        return build_result(run)
    t0 = time.perf_counter()
    d = _diagnose(run, check.draws, seed=check.seed, evidence=check.policy.method,
                  evidence_budget=check.policy.budget)  # fmt: skip
    return build_result(run, d, time.perf_counter() - t0)


def load(path, model=None, *, family=None, diagnose: bool = False, diagnose_draws: int = 4000) -> FitResult:
    """Read a fit saved by :meth:`FitResult.save <varinf.optim.FitResult.save>` (safetensors + JSON, no pickle).

    Args:
        path: the ``.safetensors`` file (the suffix may be omitted).
        model: the model that was fitted, checked against the saved fingerprint (latents and the data's row
            count, names, row shapes and sums); may be omitted for a built-in example on its default data.
        family: a fresh module of the fitted family's class, needed only for a family of a non-built-in class.
        diagnose: recompute the diagnostics (k-hat, log evidence) on the loaded q.

    Raises:
        varinf.utils.SafetensorsError: corrupt file, or a model that is not the fitted one (the
            message names what differs).

    Example:
        >>> import tempfile, os, varinf
        >>> res = varinf.fit(varinf.load_example("normal_normal"), max_steps=500, progress=False, diagnose=False)
        >>> path = res.save(os.path.join(tempfile.mkdtemp(), "fit"))
        >>> back = varinf.load(path)  # a built-in example: no model needed
        >>> bool((back.posterior().mean == res.posterior().mean).all())
        True
    """
    run = load_result(path, model, family)
    if not diagnose:
        return build_result(run)
    t0 = time.perf_counter()
    d = _diagnose(run, diagnose_draws)
    return build_result(run, d, time.perf_counter() - t0)
