"""Gain units: one model, many rate-distortion trade-offs (Cui et al. 2021, arXiv:2003.02012).

Each trained trade-off :math:`\\lambda_j` owns a positive per-channel gain :math:`g_j \\in \\mathbb{R}^M` applied
to the latent before quantization and an inverse gain :math:`g'_j` applied before synthesis:

.. math::

    \\hat y = [\\, y \\odot g_j \\,], \\qquad \\hat x = g_s(\\hat y \\odot g'_j).

Larger gains mean finer quantization, i.e. higher rate. A fractional *quality* :math:`q = j + t` with
:math:`t \\in [0, 1]` interpolates geometrically, :math:`g = g_j^{1-t} g_{j+1}^{t}`, giving a continuous
rate-distortion curve from one set of weights.

Shapes: ``gains(quality)`` with ``quality`` of shape ``(B,)`` returns two ``(B, M, 1, 1)`` tensors.

Example::

    >>> import torch
    >>> from varinf.compression.lossy.gain import GainUnits
    >>> g, ig = GainUnits(3, 4)(torch.tensor([0.0, 1.5]))
    >>> tuple(g.shape)
    (2, 4, 1, 1)
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GainUnits"]


class GainUnits(nn.Module):
    """``levels`` learned gain/inverse-gain vectors of length ``channels`` (stored as logs).

    ``init_log_gain`` (length ``levels``) sets the starting log-gain of each level, shared by all channels;
    :math:`\\log g' = -\\log g` at initialization.
    """

    def __init__(self, levels: int, channels: int, init_log_gain: list[float] | None = None):
        super().__init__()
        init = torch.zeros(levels) if init_log_gain is None else torch.as_tensor(init_log_gain, dtype=torch.float32)
        if init.shape != (levels,):
            raise ValueError(f"init_log_gain must have {levels} entries (got {tuple(init.shape)})")
        self.levels = int(levels)
        self.log_gain = nn.Parameter(init[:, None].repeat(1, channels).clone())
        self.log_inverse_gain = nn.Parameter(-init[:, None].repeat(1, channels).clone())

    def forward(self, quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(gain, inverse_gain)`` for fractional qualities in ``[0, levels - 1]``, shapes ``(B, M, 1, 1)``."""
        quality = torch.as_tensor(quality, dtype=torch.float32).reshape(-1)
        if bool(((quality < 0) | (quality > self.levels - 1)).any()) or not bool(torch.isfinite(quality).all()):
            raise ValueError(f"quality must lie in [0, {self.levels - 1}] (got {quality.tolist()})")
        j = torch.clamp(torch.floor(quality).long(), max=self.levels - 2) if self.levels > 1 else quality.long() * 0
        t = (quality - j.float())[:, None]
        k = torch.clamp(j + 1, max=self.levels - 1)
        log_g = (1 - t) * self.log_gain[j] + t * self.log_gain[k]
        log_ig = (1 - t) * self.log_inverse_gain[j] + t * self.log_inverse_gain[k]
        return torch.exp(log_g)[:, :, None, None], torch.exp(log_ig)[:, :, None, None]
