r"""The only module that imports ArviZ (optional dependency: ``pip install 'varinf[arviz]'``).

Two services:

- :func:`psis_smooth` — ArviZ's Pareto-smoothed importance sampling (``arviz.psislw``, Vehtari et al. 2024,
  arXiv:1507.02646): smoothed, self-normalized log weights and the Pareto shape estimate :math:`\hat k`.
- :func:`inference_data_from_draws` — an ``arviz.InferenceData`` with a ``posterior`` group (constrained, named
  latents and derived quantities; the ``S`` independent draws of q split into ``chains`` chains so that
  ArviZ's r-hat and ESS are defined: about 1 and ``S`` by construction), ``sample_stats`` (log weights), and
  when given ``log_likelihood``, ``posterior_predictive`` and ``observed_data``, so ``az.summary``, ``az.loo``,
  ``az.plot_ppc`` and ``az.to_netcdf`` work on a varinf fit; :func:`draws_from_inference_data` reads the
  posterior group back into tensors.

Without ArviZ, :func:`have_arviz` is False and :func:`psis_smooth` raises an ``ImportError`` naming the extra.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

__all__ = ["draws_from_inference_data", "have_arviz", "inference_data_from_draws", "psis_smooth"]

_INSTALL = "pip install 'varinf[arviz]'"


def _arviz():
    try:
        with warnings.catch_warnings():
            # arviz 0.2x announces its 1.0 refactor on import; the warning says nothing about this use
            warnings.simplefilter("ignore", FutureWarning)
            import arviz
    except ImportError as e:
        raise ImportError(f"this feature needs ArviZ: {_INSTALL}") from e
    return arviz


def have_arviz() -> bool:
    """Whether ArviZ can be imported."""
    try:
        _arviz()
    except ImportError:
        return False
    return True


def psis_smooth(log_weights: np.ndarray) -> tuple[np.ndarray, float]:
    r"""Pareto-smooth one vector of ``S`` log importance ratios.

    Args:
        log_weights: ``(S,)`` float64, :math:`\log p(x, z_s) - \log q(z_s)`; ``-inf`` allowed (weight 0).

    Returns:
        ``(smoothed, khat)``: ``(S,)`` smoothed log weights normalized so that
        :math:`\sum_s e^{\mathrm{smoothed}_s} = 1`, and :math:`\hat k`. The draws are independent draws of q,
        so the relative efficiency ``reff`` is 1.
    """
    az = _arviz()
    lw = np.asarray(log_weights, dtype=np.float64)
    if lw.ndim != 1:
        raise ValueError(f"psis_smooth takes a (S,) vector of log weights, got shape {lw.shape}")
    # extreme (or all-equal) ratios overflow or divide by zero harmlessly inside the k-hat fit
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        smoothed, khat = az.psislw(lw, reff=1.0)
    return np.asarray(smoothed, dtype=np.float64), float(khat)


def _numpy(v: Tensor) -> np.ndarray:
    return v.detach().to("cpu", torch.float64).numpy()


def inference_data_from_draws(
    draws: Mapping[str, Tensor],
    *,
    sample_stats: Mapping[str, Tensor] | None = None,
    attrs: Mapping[str, object] | None = None,
    chains: int = 1,
    pointwise: Mapping[str, Mapping[str, Tensor] | None] | None = None,
    dims: Mapping[str, list[str]] | None = None,
    coords: Mapping[str, list] | None = None,
):
    r"""Build an ``arviz.InferenceData`` from named constrained draws.

    Args:
        draws: ``{name: (S, *shape)}`` tensors (latents and any derived quantities).
        sample_stats: ``{name: (S,)}`` per-draw statistics (``log_weight``: raw :math:`\log p(x,z) - \log q(z)`;
            ``psis_log_weight``: Pareto-smoothed normalized log weights; ``log_q``).
        attrs: attributes stored on the posterior group (k-hat, family, model name, ...).
        chains: split the ``S`` draws (independent) into this many chains of ``S / chains`` (must divide ``S``).
        pointwise: the groups of a model with data: ``log_likelihood`` ``{name: (S, N)}`` (``az.loo``,
            ``az.waic``), ``posterior_predictive`` ``{name: (S, N, ...)}`` (replicated data) and
            ``observed_data`` ``{name: (N, ...)}`` (what they replicate); missing or None groups are left out.
        dims, coords: ArviZ's ``dims={name: [dimension, ...]}`` and ``coords={dimension: labels}`` (a model's
            :attr:`~varinf.models.Model.dims` and ``coords``).

    Other vector quantities get dimensions named ``{name}_dim_{i}`` with 0-based coordinates (ArviZ's default).
    """
    az = _arviz()
    if not draws:
        raise ValueError("to_inference_data needs at least one named draw array")
    sizes = {k: int(v.shape[0]) for k, v in draws.items()}
    S = next(iter(sizes.values()))
    if any(s != S for s in sizes.values()):
        raise ValueError(f"all draw arrays need the same number of draws, got {sizes}")
    if chains < 1 or S % chains:
        raise ValueError(f"chains={chains} must divide the number of draws {S}")

    def per_chain(group):
        return {k: _numpy(v).reshape(chains, S // chains, *v.shape[1:]) for k, v in (group or {}).items()}

    pointwise = pointwise or {}
    groups = {
        "posterior": per_chain(draws),
        "sample_stats": per_chain(sample_stats) or None,
        "log_likelihood": per_chain(pointwise.get("log_likelihood")) or None,
        "posterior_predictive": per_chain(pointwise.get("posterior_predictive")) or None,
        "observed_data": {k: _numpy(v) for k, v in (pointwise.get("observed_data") or {}).items()} or None,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "more chains than draws" does not apply to VI draws
        idata = az.from_dict(**{k: v for k, v in groups.items() if v is not None}, dims=dict(dims or {}) or None,
                             coords=dict(coords or {}) or None)  # fmt: skip
    idata.posterior.attrs.update({"inference_library": "varinf", **{k: _attr(v) for k, v in (attrs or {}).items()}})
    return idata


def _attr(v):
    # netCDF attributes must be numbers, strings or arrays of them
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float | str):
        return v
    return str(v)


def draws_from_inference_data(idata, dtype: torch.dtype | None = None) -> dict[str, Tensor]:
    """The posterior group of ``idata`` as ``{name: (chains * draws, *shape)}`` tensors (chains stacked), in the
    stored dtype (float64 for varinf exports) unless ``dtype`` is given."""
    if not hasattr(idata, "posterior"):
        raise ValueError("this InferenceData has no posterior group")
    out = {}
    for name, da in idata.posterior.data_vars.items():
        v = np.asarray(da.values)
        out[str(name)] = torch.as_tensor(v.reshape(-1, *v.shape[2:]), dtype=dtype)
    return out
