"""ArviZ export of a fit: ``to_inference_data(result)`` -> ``arviz.InferenceData``.

Groups::

    posterior             S draws, constrained and named as the model's latents, plus the model's derived
                          quantities (eight schools' theta) and any ``quantities``: the fit's own draws of q, or,
                          when the fit reports PSIS-corrected estimates (``result.psis_corrected``), those draws
                          importance-resampled by their smoothed weights, so that ``az.summary`` agrees with
                          ``result.summary()``; split into 4 chains of independent draws (r-hat ~ 1, ESS ~ S by
                          construction: ArviZ's convergence statistics are defined, and say nothing about q;
                          k-hat does); attrs: which draws, k-hat, verdict, log evidence, ELBO, family, model, steps
    sample_stats          log_weight (raw log p(x,z) - log q(z), nats) and log_q of each draw; for q's own draws
                          also psis_log_weight (smoothed, normalized: reweight any quantity with them)
    log_likelihood        models with data: log p(x_i | z_s), (chain, draw, N)  -> az.loo, az.waic
    posterior_predictive  models with ``simulate``: replicated data, (chain, draw, N, ...) -> az.plot_ppc
    observed_data         the data those replicate, (N, ...)

Foreign models (Stan, NumPyro, PyMC) carry their own ``dims`` and ``coords``; a Stan generated quantity named
``log_lik`` is also exported as the ``log_likelihood`` group (az.loo).

The pointwise groups hold ``S × N`` numbers; with ``pointwise="auto"`` they are left out (with a warning) when
that exceeds the model's ``max_memory`` (pass fewer ``num_draws``). ``az.loo`` treats the draws as posterior
draws: trust it when k-hat is good.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from ..models.foreign import LOG_LIK
from ..utils import seeded
from .arviz_adapter import draws_from_inference_data, inference_data_from_draws
from .diagnosis import Diagnostics, diagnose

__all__ = ["export_draws", "from_inference_data", "to_inference_data"]


def export_draws(result, num_draws: int | None = None, seed: int | None = 0, corrected: bool | None = None):
    """``(diagnostics, index, corrected)``: the diagnostics whose draws are exported (the fit's own when
    ``num_draws`` is None or equal, else a fresh diagnosis), and the ``(S,)`` indices of the exported draws among
    them: all of them in order (q's own), or a PSIS resample with replacement (``corrected``; default:
    ``result.psis_corrected``)."""
    d = result.diagnostics
    if not isinstance(d, Diagnostics) or (num_draws is not None and num_draws != d.num_draws):
        d = diagnose(result, num_draws or 4000, seed=seed, warn=False)
    if corrected is None:
        corrected = bool(result.report == "psis" and d.reliable)
    index = d.resample_index(d.num_draws, seed) if corrected else torch.arange(d.num_draws)
    return d, index, corrected


def to_inference_data(
    result,
    num_draws: int | None = None,
    quantities: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None,
    seed: int | None = 0,
    chains: int = 4,
    pointwise: bool | str = "auto",
    corrected: bool | None = None,
):
    """Export a :class:`~varinf.optim.FitResult` as an ``arviz.InferenceData`` (needs ArviZ).

    Args:
        result: a fit; its ``diagnostics`` are reused when present (and ``num_draws`` is None or equal).
        num_draws: draws of q (default: the diagnostics' draws, else 4000).
        quantities: optional ``f({latent: (S, *shape)}) -> {name: (S, *shape)}`` of derived quantities to
            add to the posterior group (Stan's transformed parameters).
        seed: for fresh draws, the resampling and the replicated data's noise.
        chains: split the draws into this many chains (1 when it does not divide the number of draws).
        pointwise: add the ``log_likelihood``, ``posterior_predictive`` and ``observed_data`` groups (models
            with data): True, False, or ``"auto"`` (when ``S × N`` values fit in the model's ``max_memory``).
        corrected: export PSIS-resampled draws (True) or q's own (False); default: what the summary reports
            (``result.psis_corrected``).

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
    d, index, corrected = export_draws(result, num_draws, seed, corrected)
    model = result.model
    latents = {lat.name: d.draws[lat.name][index.to(d.draws[lat.name].device)] for lat in model.latents}
    draws = {**latents, **model.derived_quantities(latents)}
    if quantities is not None:
        extra = quantities(dict(draws))
        clash = sorted(set(extra) & set(draws))
        if clash:
            raise ValueError(f"derived quantities {clash} have the same names as latents")
        draws.update(extra)
    stats = {"log_weight": d.psis.log_weights[index], "log_q": d.log_q[index.to(d.log_q.device)]}
    if not corrected:
        stats["psis_log_weight"] = d.psis.smoothed_log_weights
    S = int(index.numel())
    groups = _pointwise(model, latents, S, pointwise, seed)
    if pointwise and LOG_LIK in draws and getattr(model, "engine", None) is not None:  # Stan's log_lik convention
        groups = {"log_likelihood": {LOG_LIK: draws[LOG_LIK].reshape(S, -1)}}
    dims, coords = _labels(model, draws)
    return inference_data_from_draws(
        draws, sample_stats=stats, attrs=_attrs(result, d, corrected), pointwise=groups, dims=dims, coords=coords,
        chains=chains if chains >= 1 and S % chains == 0 else 1,
    )  # fmt: skip


def _labels(model, draws: dict) -> tuple[dict | None, dict | None]:
    """ArviZ's ``dims`` and ``coords`` of the exported quantities, from the model's own (foreign models)."""
    dims = {k: list(v) for k, v in getattr(model, "dims", {}).items() if k in draws}
    used = {name for v in dims.values() for name in v}
    coords = {k: v for k, v in getattr(model, "coords", {}).items() if k in used}
    return dims or None, coords or None


def _attrs(result, d: Diagnostics, corrected: bool) -> dict:
    ev = d.evidence
    return {
        "model": getattr(result.model, "name", "model"),
        "family": result.family_label,
        "draws": "PSIS-resampled draws of q" if corrected else "draws of q",
        "khat": d.khat,
        "khat_threshold": d.psis.threshold,
        "verdict": d.verdict,
        "psis_ess": d.ess,
        "log_evidence": ev.estimate,
        "log_evidence_se": ev.se,
        "log_evidence_method": ev.method,
        "log_evidence_reliable": bool(ev.reliable),
        "elbo": d.elbo,
        "num_steps": result.num_steps,
        "converged": bool(result.converged),
    }


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
