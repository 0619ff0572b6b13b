"""ArviZ export of a fit: ``to_inference_data(result)`` -> ``arviz.InferenceData``.

Groups::

    posterior             S draws of q, constrained and named as the model's latents, plus the model's
                          derived quantities (eight schools' theta) and any ``quantities``; split into 4
                          chains of independent draws (r-hat ~ 1, ESS ~ S by construction: ArviZ's
                          convergence statistics are defined, and say nothing about q; k-hat does);
                          attrs: k-hat, verdict, log evidence, ELBO, family, model, steps, converged
    sample_stats          log_weight (raw log p(x,z) - log q(z), nats), psis_log_weight (smoothed,
                          normalized), log_q
    log_likelihood        models with data: log p(x_i | z_s), (chain, draw, N)  -> az.loo, az.waic
    posterior_predictive  models with ``simulate``: replicated data, (chain, draw, N, ...) -> az.plot_ppc
    observed_data         the data those replicate, (N, ...)

Foreign models (Stan, NumPyro, PyMC) carry their own ``dims`` and ``coords``; a Stan generated quantity named
``log_lik`` is also exported as the ``log_likelihood`` group (az.loo).

The draws are the ones the diagnostics were computed on, so ``az.summary(idata)`` summarizes q and the
weights let a user reweight (PSIS) any quantity. The pointwise groups hold ``S × N`` numbers; with
``pointwise="auto"`` they are left out (with a warning) when that exceeds the model's ``max_memory``
(pass fewer ``num_draws``). ``az.loo`` then treats q's draws as posterior draws: trust it when k-hat is good.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from torch import Tensor

from ..models.foreign import LOG_LIK
from ..utils import seeded
from .arviz_adapter import draws_from_inference_data, inference_data_from_draws
from .diagnose import Diagnostics, diagnose

__all__ = ["from_inference_data", "to_inference_data"]


def to_inference_data(
    result,
    num_draws: int | None = None,
    quantities: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None,
    seed: int | None = 0,
    chains: int = 4,
    pointwise: bool | str = "auto",
):
    """Export a :class:`~varinf.optim.FitResult` as an ``arviz.InferenceData`` (needs ArviZ).

    Args:
        result: a fit; its ``diagnostics`` are reused when present (and ``num_draws`` is None or equal).
        num_draws: draws of q (default: the diagnostics' draws, else 4000).
        quantities: optional ``f({latent: (S, *shape)}) -> {name: (S, *shape)}`` of derived quantities to
            add to the posterior group (Stan's transformed parameters).
        seed: for fresh draws and the replicated data's noise.
        chains: split the draws into this many chains (1 when it does not divide the number of draws).
        pointwise: add the ``log_likelihood``, ``posterior_predictive`` and ``observed_data`` groups (models
            with data): True, False, or ``"auto"`` (when ``S × N`` values fit in the model's ``max_memory``).

    Example:
        >>> import torch, varinf, arviz as az
        >>> from varinf.models import NormalNormal
        >>> res = varinf.fit(NormalNormal(torch.tensor([1.0, 2.0])), max_steps=1000, progress=False)
        >>> idata = to_inference_data(res)
        >>> list(az.summary(idata, kind="stats").index)
        ['mu']
        >>> sorted(idata.groups())
        ['log_likelihood', 'observed_data', 'posterior', 'posterior_predictive', 'sample_stats']
    """
    d = result.diagnostics
    if not isinstance(d, Diagnostics) or (num_draws is not None and num_draws != d.num_draws):
        d = diagnose(result, num_draws or 4000, seed=seed, warn=False)
    model = result.model
    latents = {lat.name: d.draws[lat.name] for lat in model.latents}
    draws = {**latents, **model.derived_quantities(latents)}
    if quantities is not None:
        extra = quantities(dict(draws))
        clash = sorted(set(extra) & set(draws))
        if clash:
            raise ValueError(f"derived quantities {clash} have the same names as latents")
        draws.update(extra)
    S = d.num_draws
    groups = _pointwise(model, latents, S, pointwise, seed)
    if pointwise and LOG_LIK in draws and getattr(model, "engine", None) is not None:  # Stan's log_lik convention
        groups = {"log_likelihood": {LOG_LIK: draws[LOG_LIK].reshape(S, -1)}}
    attrs = {
        "model": getattr(result.model, "name", "model"),
        "family": result.family_label,
        "khat": d.khat,
        "khat_threshold": d.psis.threshold,
        "verdict": d.verdict,
        "psis_ess": d.ess,
        "log_evidence": (d.evidence or d.log_evidence).estimate,
        "log_evidence_se": (d.evidence or d.log_evidence).se,
        "log_evidence_method": (d.evidence or d.log_evidence).method,
        "log_evidence_reliable": bool((d.evidence or d.log_evidence).reliable),
        "elbo": d.elbo,
        "num_steps": result.num_steps,
        "converged": bool(result.converged),
    }
    dims = {k: list(v) for k, v in getattr(model, "dims", {}).items() if k in draws}
    used = {name for v in dims.values() for name in v}
    coords = {k: v for k, v in getattr(model, "coords", {}).items() if k in used}
    return inference_data_from_draws(
        draws,
        dims=dims or None,
        coords=coords or None,
        log_weights=d.psis.log_weights,
        psis_log_weights=d.psis.smoothed_log_weights,
        extra_stats={"log_q": d.log_q},
        attrs=attrs,
        chains=chains if chains >= 1 and S % chains == 0 else 1,
        **groups,
    )


def _pointwise(model, z: dict[str, Tensor], S: int, pointwise, seed) -> dict:
    """log_likelihood / posterior_predictive / observed_data groups for a model with data."""
    if pointwise not in (True, False, "auto"):
        raise ValueError(f"pointwise must be True, False or 'auto', got {pointwise!r}")
    if not pointwise or not getattr(model, "has_plate", False):
        return {}
    if model.distributed:
        warnings.warn(f"{model.name}: pointwise groups are not exported for data spread over processes", stacklevel=3)
        return {}
    N = model.plate.size
    has_sim = model._simulate_fn is not None
    need = S * N * 8 * (2 if has_sim else 1)
    if pointwise == "auto" and need > model.max_memory:
        warnings.warn(
            f"{model.name}: log_likelihood/posterior_predictive groups left out: {S} draws x {N} rows = "
            f"{need / 2**20:.0f} MiB > max_memory {model.max_memory / 2**20:.0f} MiB; pass num_draws=... or "
            "pointwise=True",
            stacklevel=3,
        )
        return {}
    with seeded(seed):
        replicated = model.simulate_data(z) if has_sim else {}
    name = next(iter(replicated)) if len(replicated) == 1 else "obs"
    observed = {k: v for k, v in model.data.items() if k in replicated}
    return {
        "log_likelihood": {name: model.pointwise_log_likelihood(z)},
        "posterior_predictive": replicated or None,
        "observed_data": observed or None,
    }


def from_inference_data(idata) -> dict[str, Tensor]:
    """The posterior group as ``{name: (chains * draws, *shape)}`` tensors (inverse of the export)."""
    return draws_from_inference_data(idata)
