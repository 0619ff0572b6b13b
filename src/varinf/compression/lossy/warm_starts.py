r"""Warm starts: a trained codec turned into a richer one that computes the same function, so that training
the new parts starts where the old model ended.

- :func:`mean_scale_from_hyperprior`: a scale hyperprior -> a mean-scale model (the mean head of :math:`h_s`
  and the :math:`y` inputs of :math:`h_a` start at zero, so :math:`\mu = 0` until trained);
- :func:`checkerboard_from_mean_scale`: a mean-scale model -> a checkerboard context model (the context
  network's last layer starts at zero); new quality levels get gains on the line through the two nearest
  trained levels (in log lambda).

Both sit beside the model rather than in it: they import :class:`~.model.ImageCodec`, which imports the latent
codecs, never the reverse.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .model import ImageCodec

__all__ = ["checkerboard_from_mean_scale", "mean_scale_from_hyperprior"]


@torch.no_grad()
def mean_scale_from_hyperprior(codec):
    """A mean-scale :class:`~varinf.compression.lossy.model.ImageCodec` computing the same function as ``codec``
    (a trained ``prior="hyperprior"`` codec): same transforms, gains and :math:`z` prior; the :math:`y`
    inputs of :math:`h_a` and the mean head of :math:`h_s` are zero, so :math:`\\mu = 0` until trained."""
    if codec.config.prior != "hyperprior":
        raise ValueError(f"expected a scale-hyperprior codec (got prior={codec.config.prior!r})")
    out = ImageCodec(replace(codec.config, prior="mean-scale", name=codec.config.name + "-mean-scale"))
    state = {k: v.clone() for k, v in codec.state_dict().items()}
    m = codec.config.latent_channels
    w = state["latent.h_a.0.weight"]  # (N_h, M, 3, 3) -> (N_h, 2M, 3, 3): zero weights on y
    state["latent.h_a.0.weight"] = torch.cat([w, torch.zeros_like(w)], dim=1)
    w, b = state["latent.h_s.4.weight"], state["latent.h_s.4.bias"]  # (M, N_h, 3, 3) -> (2M, ...): zero means
    state["latent.h_s.4.weight"] = torch.cat([w, torch.zeros_like(w)], dim=0)
    state["latent.h_s.4.bias"] = torch.cat([b, torch.zeros(m)], dim=0)
    out.load_state_dict(state)
    return out.train(codec.training)


def _extend_gains(log_gain: torch.Tensor, old: np.ndarray, new: np.ndarray) -> torch.Tensor:
    """Per-channel log-gains at the ``new`` lambdas: copied where a lambda was trained, otherwise linear in
    ``log lambda`` through the two nearest trained levels (extrapolated beyond the ends)."""
    x_old, out = np.log(old), []
    for lam in np.log(new):
        hit = np.flatnonzero(np.isclose(x_old, lam, rtol=0, atol=1e-9))
        if hit.size:
            out.append(log_gain[hit[0]])
            continue
        i, j = np.argsort(np.abs(x_old - lam))[:2]
        t = float((lam - x_old[i]) / (x_old[j] - x_old[i]))
        out.append(log_gain[i] + t * (log_gain[j] - log_gain[i]))
    return torch.stack(out)


@torch.no_grad()
def checkerboard_from_mean_scale(codec, lambdas: tuple[float, ...] | None = None, name: str | None = None,
                                 context_channels: int = 128, hidden: int = 192):  # fmt: skip
    """A checkerboard :class:`~varinf.compression.lossy.model.ImageCodec` computing the same function as the
    mean-scale ``codec`` at its trained qualities: same transforms, hyperprior and :math:`z` prior; ``E``'s last
    layer is zero, so the context changes nothing until trained. ``lambdas`` (default: the codec's) may add
    quality levels; their gains start on the line through the two nearest trained levels (in log lambda)."""
    if codec.config.prior != "mean-scale":
        raise ValueError(f"expected a mean-scale codec (got prior={codec.config.prior!r})")
    lambdas = tuple(codec.config.lambdas if lambdas is None else lambdas)
    extra = {**codec.config.extra, "context_channels": int(context_channels), "context_hidden": int(hidden)}
    config = replace(codec.config, prior="checkerboard", lambdas=lambdas, extra=extra,
                     name=name or codec.config.name.replace("-mean-scale", "") + "-checkerboard")  # fmt: skip
    out = ImageCodec(config)
    state = out.state_dict()
    for key, value in codec.state_dict().items():
        if key.startswith("gains."):
            old, new = np.asarray(codec.config.lambdas), np.asarray(lambdas)
            state[key] = _extend_gains(value, old, new)
        else:
            state[key] = value.clone()
    last = out.latent.entropy_parameters[-1]
    state["latent.entropy_parameters.4.weight"] = torch.zeros_like(last.weight)
    state["latent.entropy_parameters.4.bias"] = torch.zeros_like(last.bias)
    out.load_state_dict(state)
    return out.train(codec.training)
