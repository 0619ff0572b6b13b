"""ArviZ export of a fit: ``to_inference_data(result)`` -> ``arviz.InferenceData``.

Groups::

    posterior     one chain of S draws of q, constrained and named as the model's latents
                  (+ any derived quantities, e.g. eight schools' theta); attrs: k-hat, verdict,
                  log evidence, ELBO, family, model, steps, converged
    sample_stats  log_weight (raw log p(x,z) - log q(z), nats), psis_log_weight (smoothed, normalized),
                  log_q

The draws are the ones the diagnostics were computed on, so ``az.summary(idata)`` summarizes q and the
weights let a user reweight (PSIS) any quantity.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from .arviz_adapter import draws_from_inference_data, inference_data_from_draws
from .diagnose import Diagnostics, diagnose

__all__ = ["from_inference_data", "to_inference_data"]


def to_inference_data(
    result,
    num_draws: int | None = None,
    quantities: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None,
    seed: int | None = 0,
):
    """Export a :class:`~varinf.optim.FitResult` as an ``arviz.InferenceData`` (needs ArviZ).

    Args:
        result: a fit; its ``diagnostics`` are reused when present (and ``num_draws`` is None or equal).
        num_draws: draws of q (default: the diagnostics' draws, else 4000).
        quantities: optional ``f({latent: (S, *shape)}) -> {name: (S, *shape)}`` of derived quantities to
            add to the posterior group (Stan's transformed parameters).
        seed: for fresh draws.

    Example:
        >>> import torch, varinf, arviz as az
        >>> from varinf.models import NormalNormal
        >>> res = varinf.fit(NormalNormal(torch.tensor([1.0, 2.0])), max_steps=1000, progress=False)
        >>> idata = to_inference_data(res)
        >>> list(az.summary(idata, kind="stats").index)
        ['mu']
    """
    d = result.diagnostics
    if not isinstance(d, Diagnostics) or (num_draws is not None and num_draws != d.num_draws):
        d = diagnose(result, num_draws or 4000, seed=seed, warn=False)
    draws = dict(d.draws)
    if quantities is not None:
        extra = quantities(d.draws)
        clash = sorted(set(extra) & set(draws))
        if clash:
            raise ValueError(f"derived quantities {clash} have the same names as latents")
        draws.update(extra)
    attrs = {
        "model": getattr(result.model, "name", "model"),
        "family": type(result.family).__name__,
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
    return inference_data_from_draws(
        draws,
        log_weights=d.psis.log_weights,
        psis_log_weights=d.psis.smoothed_log_weights,
        extra_stats={"log_q": d.log_q},
        attrs=attrs,
    )


def from_inference_data(idata) -> dict[str, Tensor]:
    """The posterior group as ``{name: (chains * draws, *shape)}`` tensors (inverse of the export)."""
    return draws_from_inference_data(idata)
