r"""``optimize``: run one fitting method on a model — the engine under :func:`varinf.fit` (which adds diagnostics).

::

    optimize(model, family, objective, method="auto", **options)
      -> run_method(...)                           -> MethodRun
           family "auto" -> the method's choice     (methods/<method>.resolve_family; a family it cannot fit: error)
           route_options(...)                       FitConfig / the method's Options / the family's options, or
                                                    OptionError naming the option (methods/routing.py)
           seeded RNG, thread count, no per-step Distribution validation
           METHODS[method].run(model, family, objective, options, config, family_options)
      -> build_result(run)                         -> FitResult (no diagnostics)

Everything up to the method's ``run`` is cheap and evaluates nothing: a misspelt or misplaced option fails in
milliseconds, before the model is moved, checked or evaluated.
"""

from __future__ import annotations

import contextlib

from torch import nn

from ..families import canonical_family, check_family_options
from ..models import Model
from ..models.model import distribution_validation
from ..utils import num_threads, seeded
from .config import FitConfig
from .methods import METHODS
from .result import FitResult, MethodRun, build_result
from .routing import MethodOptions, Routed, refuse_other_methods_options, route_options

__all__ = ["METHODS", "optimize", "prepare", "run_method"]


@contextlib.contextmanager
def _threads(model: Model, threads):
    if threads == "auto":
        threads = 1 if sum(b.numel() for b in model.buffers()) < 2_000_000 else None
    with num_threads(threads):
        yield


def prepare(model: Model, family, objective, method: str | MethodOptions, config: FitConfig | None,
            options: dict) -> tuple[object, Routed]:  # fmt: skip
    """The family to fit (``"auto"`` resolved) and every option where it belongs; raises before any work."""
    name = method.method if isinstance(method, MethodOptions) else method
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(sorted(METHODS))}")
    _check_objective(objective, name)
    refuse_other_methods_options(METHODS, name, family, options)
    if isinstance(family, str) and family.lower() != "auto":
        family = canonical_family(family)  # an unknown name fails here
    elif not isinstance(family, str | nn.Module):
        raise TypeError(f"family must be a name ('auto', 'meanfield', 'fullrank', 'lowrank', 'flow') or an nn.Module, "
                        f"got {type(family).__name__}")  # fmt: skip
    family = METHODS[name].resolve_family(family, model.dim, options, objective)
    routed = route_options(METHODS, method, family, config, options)
    if isinstance(family, str) and routed.family_options:
        check_family_options(family, model.dim, routed.family_options)
    return family, routed


def _check_objective(objective, method: str) -> None:
    """A one-line error, before any work, for an objective that is not a bound or that the method cannot use."""
    if objective is None:
        return
    if isinstance(objective, type) or not callable(getattr(objective, "loss", None)):
        what = f"the class {objective.__name__}" if isinstance(objective, type) else repr(objective)
        raise ValueError(f"objective must be a bound such as varinf.ELBO(), varinf.IWAE(8) or varinf.Renyi(0.5), "
                         f"got {what}")  # fmt: skip
    if method in ("bam", "pathfinder"):
        raise ValueError(f"objective={type(objective).__name__}(...): method={method!r} does not optimize a chosen "
                         "bound; use method='advi' for one (or leave objective out)")  # fmt: skip


def run_method(model: Model, family="auto", objective=None, *, method: str | MethodOptions = "auto",
               config: FitConfig | None = None, **options) -> MethodRun:  # fmt: skip
    """Fit q with ``method`` and return the method's :class:`~.result.MethodRun` (see :func:`optimize`)."""
    family, r = prepare(model, family, objective, method, config, options)
    with seeded(r.config.seed), _threads(model, r.config.threads), distribution_validation(False):
        return METHODS[r.options.method].run(model, family, objective, r.options, r.config, r.family_options)


def optimize(model: Model, family="auto", objective=None, *, method: str | MethodOptions = "auto",
             config: FitConfig | None = None, **options) -> FitResult:  # fmt: skip
    r"""Fit a variational approximation to ``model``'s posterior with ``method``, without diagnostics.

    Args:
        model: a :class:`~varinf.models.Model`.
        family: ``"auto"`` (full rank up to 300 dimensions, low rank above; mean-field under ADVI),
            ``"meanfield"``, ``"fullrank"``, ``"lowrank"``, ``"flow"`` (or an alias), or a family module over
            ``model.dim`` unconstrained dimensions.
        objective: :class:`~varinf.objectives.ELBO` (ADVI's default, one reparameterized particle), ``IWAE``,
            ``Renyi``; giving one makes ``method="auto"`` run ADVI.
        method: a key of :data:`METHODS` (``"auto"``, ``"advi"``, ``"bam"``, ``"pathfinder"``), or a method's
            options value (``ADVIOptions(lr=0.05)``, ``BaMOptions(num_draws=32)``, ...).
        config: a :class:`FitConfig` (settings every method shares); keyword ``options`` override it.
        options: each goes where it is declared: :class:`FitConfig` (``seed``, ``dtype``, ``init``, ...), the
            method's options (``max_steps``, ``lr``, ``num_draws``, ``num_paths``, ...) or the family's
            (``rank=3`` for ``"lowrank"``); anything else raises :class:`~varinf.errors.OptionError` naming it.

    Example:
        >>> from varinf.models import NormalNormal
        >>> import torch
        >>> res = optimize(NormalNormal(torch.tensor([1.0, 2.0])), max_steps=2000, progress=False)
        >>> round(res.draws(4000, seed=0)["mu"].mean().item(), 1)
        1.5
    """
    return build_result(run_method(model, family, objective, method=method, config=config, **options))
