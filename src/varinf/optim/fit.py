r"""``optimize``: run one fitting method on a model — the engine under :func:`varinf.fit` (which adds diagnostics).

::

    optimize(model, family, objective, method="advi", **options)
      -> FitConfig(**options that name its fields)   # validated settings; the rest: family keyword arguments
      -> seeded RNG, thread count, no per-step Distribution validation
      -> METHODS[method](model, family, objective, config, family_kwargs) -> FitResult

Each method lives in its own file (``advi.py``, ...) and takes the same arguments.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from torch import nn

from ..families import canonical_family
from ..models import Model
from ..objectives import ELBO
from ..utils import num_threads, seeded
from .advi import advi
from .auto import auto, resolve_family
from .bam import bam
from .config import FitConfig
from .pathfinder import pathfinder
from .result import FitResult
from .start import distribution_validation

__all__ = ["METHODS", "optimize"]

# name -> f(model, family, objective, config, family_kwargs) -> FitResult
METHODS: dict[str, Callable[..., FitResult]] = {"auto": auto, "advi": advi, "bam": bam, "pathfinder": pathfinder}


# FitConfig fields that only stochastic-gradient ADVI reads: Batch-and-Match and Pathfinder would ignore them
_ADVI_ONLY = ("lr", "optimizer", "tol_rel_obj", "window", "average", "decay", "max_decays", "max_recoveries", "callback")


def _check_objective(objective, method: str) -> None:
    """A one-line error, before any work, for an objective that is not a bound object or that the method ignores."""
    if objective is None:
        return
    if isinstance(objective, type) or not callable(getattr(objective, "loss", None)):
        what = f"the class {objective.__name__}" if isinstance(objective, type) else repr(objective)
        raise ValueError(f"objective must be a bound such as varinf.ELBO(), varinf.IWAE(8) or varinf.Renyi(0.5), "
                         f"got {what}")  # fmt: skip
    if method in ("bam", "pathfinder"):
        raise ValueError(f"objective={type(objective).__name__}(...): method={method!r} does not optimize a chosen "
                         "bound; use method='advi' for one (or leave objective out)")  # fmt: skip


def _refuse_advi_settings(method: str, config: FitConfig) -> None:
    """Batch-and-Match and Pathfinder take neither minibatches nor ADVI's step-size settings: refuse them by name."""
    if config.batch_size is not None:
        raise ValueError(f"batch_size={config.batch_size}: method={method!r} uses every data row at every iteration; "
                         "minibatches need method='advi' (or 'auto', which then runs minibatch ADVI)")  # fmt: skip
    default = FitConfig()
    given = [k for k in _ADVI_ONLY if getattr(config, k) != getattr(default, k)]
    if given:
        shown = ", ".join(f"{k}={getattr(config, k)!r}" for k in given)
        raise ValueError(f"{shown}: ADVI's setting(s), which method={method!r} does not use; use method='advi' "
                         "(or 'auto', which then runs ADVI), or leave them out")  # fmt: skip


@contextlib.contextmanager
def _threads(model: Model, threads):
    if threads == "auto":
        threads = 1 if sum(b.numel() for b in model.buffers()) < 2_000_000 else None
    with num_threads(threads):
        yield


def optimize(
    model: Model,
    family="auto",
    objective=None,
    *,
    method: str = "auto",
    config: FitConfig | None = None,
    **options,
) -> FitResult:
    r"""Fit a variational approximation to ``model``'s posterior with ``method``, without diagnostics.

    Args:
        model: a :class:`~varinf.models.Model`.
        family: ``"auto"`` (full rank up to 300 dimensions, low rank above; mean-field under ADVI),
            ``"meanfield"``, ``"fullrank"``, ``"lowrank"``, ``"flow"`` (or an alias), or a family module over
            ``model.dim`` unconstrained dimensions.
        objective: :class:`~varinf.objectives.ELBO` (ADVI's default, one reparameterized particle), ``IWAE``,
            ``Renyi``; giving one makes ``method="auto"`` run ADVI.
        method: a key of :data:`METHODS`: ``"auto"`` (Pathfinder start, then Batch-and-Match and a polish for
            the family; ADVI when its settings are given), ``"advi"``, ``"bam"``, ``"pathfinder"``.
        config: a :class:`FitConfig`; keyword ``options`` that name its fields override it, the rest go to
            the family (e.g. ``rank=3`` for ``"lowrank"``).

    Example:
        >>> from varinf.models import NormalNormal
        >>> import torch
        >>> res = optimize(NormalNormal(torch.tensor([1.0, 2.0])), max_steps=2000, progress=False)
        >>> round(res.draws(4000, seed=0)["mu"].mean().item(), 1)
        1.5
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(sorted(METHODS))}")
    names = set(FitConfig.__dataclass_fields__)
    family_kwargs = {k: v for k, v in options.items() if k not in names}
    config = (config or FitConfig()).replace(**{k: v for k, v in options.items() if k in names})
    _check_objective(objective, method)
    if method in ("bam", "pathfinder"):
        _refuse_advi_settings(method, config)
    if isinstance(family, str) and family.lower() != "auto":
        canonical_family(family)  # an unknown name fails here, before any work
    elif not isinstance(family, str | nn.Module):
        raise TypeError(f"family must be a name ('auto', 'meanfield', 'fullrank', 'lowrank', 'flow') or an nn.Module, "
                        f"got {type(family).__name__}")  # fmt: skip
    if method != "auto":
        family = resolve_family(family, method, model.dim)
        if objective is None:
            objective = ELBO()
    with seeded(config.seed), _threads(model, config.threads), distribution_validation(False):
        return METHODS[method](model, family, objective, config, family_kwargs)
