"""Entropy bottleneck: a learned factorized density for the hyper-latent :math:`z` (or for :math:`y` itself).

Each channel :math:`c` has its own univariate cumulative :math:`F_c = \\sigma \\circ f_c`, where
:math:`f_c: \\mathbb{R} \\to \\mathbb{R}` is a small monotone network (Ballé et al. 2018, arXiv:1802.01436,
appendix 6.1). Training replaces rounding by additive uniform noise, and the density of the noisy value is
the density convolved with the unit box:

.. math::

    p(\\tilde z_c) = F_c(\\tilde z_c + \\tfrac12) - F_c(\\tilde z_c - \\tfrac12).

At coding time the same expression evaluated at integers is the probability mass of :math:`\\hat z = [z]`;
:meth:`EntropyBottleneck.table` turns it into a 24-bit integer table deterministically from the weights
(float64 numpy with a fixed summation order), so there is no hidden state to ``update()``.

Shapes: ``forward(z)`` takes ``(B, C, H, W)`` and returns the noisy/rounded values and the likelihoods, both
``(B, C, H, W)``. Units: likelihoods are probabilities; rates derived from them are in bits.

Example::

    >>> import torch
    >>> from varinf.compression.lossy.bottleneck import EntropyBottleneck
    >>> eb = EntropyBottleneck(4)
    >>> z_tilde, lik = eb(torch.randn(2, 4, 3, 3) * 5)
    >>> bool(((lik > 0) & (lik <= 1)).all())
    True
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..coding.tables import DiscreteTable

__all__ = ["EntropyBottleneck"]

LIKELIHOOD_BOUND = 1e-9  # keeps -log2(likelihood) finite during training (<= ~30 bits per symbol)


class EntropyBottleneck(nn.Module):
    """Factorized prior with ``channels`` independent learned univariate densities.

    ``filters`` are the hidden widths of the monotone network :math:`f_c` (1 -> 3 -> 3 -> 3 -> 1 by default);
    ``init_scale`` is the initial width of the density.
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0):
        super().__init__()
        self.channels = int(channels)
        widths = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(widths) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(widths) - 1):
            # softplus(init) = 1 / scale / fan_out, so f starts as a linear map of slope 1/init_scale
            init = float(np.log(np.expm1(1.0 / scale / widths[i + 1])))
            self.matrices.append(nn.Parameter(torch.full((self.channels, widths[i + 1], widths[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(self.channels, widths[i + 1], 1) - 0.5))
            if i < len(widths) - 2:
                self.factors.append(nn.Parameter(torch.zeros(self.channels, widths[i + 1], 1)))

    def logits_cdf(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`f_c(x)` for ``x`` of shape ``(C, 1, n)``; returns ``(C, 1, n)``."""
        for i, matrix in enumerate(self.matrices):
            x = torch.matmul(F.softplus(matrix), x) + self.biases[i]
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def likelihood(self, v: torch.Tensor) -> torch.Tensor:
        """:math:`F_c(v + 1/2) - F_c(v - 1/2)` for ``v`` of shape ``(B, C, H, W)``."""
        b, c, h, w = v.shape
        flat = v.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lower = self.logits_cdf(flat - 0.5)
        upper = self.logits_cdf(flat + 0.5)
        # evaluate on the side of the median where the sigmoids are not saturated at 1 (cancellation)
        sign = -torch.sign(lower + upper).detach()
        sign = torch.where(sign == 0, torch.ones_like(sign), sign)
        lik = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        lik = lik.reshape(c, b, h, w).permute(1, 0, 2, 3)
        return torch.clamp(lik, min=LIKELIHOOD_BOUND)

    def forward(self, z: torch.Tensor, noise: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z_tilde, likelihood)``: uniform noise in training (or if ``noise``), rounding otherwise."""
        noise = self.training if noise is None else noise
        z_tilde = z + torch.empty_like(z).uniform_(-0.5, 0.5) if noise else torch.round(z)
        return z_tilde, self.likelihood(z_tilde)

    # ----------------------------------------------------------------------------------------------
    # integer tables for entropy coding
    def _logits_cdf_numpy(self, x: np.ndarray) -> np.ndarray:
        """float64 numpy twin of :meth:`logits_cdf` with an explicit summation order. ``x``: (C, n) -> (C, n)."""
        h = x[:, None, :]  # (C, width, n)
        for i, matrix in enumerate(self.matrices):
            m = np.logaddexp(0.0, matrix.detach().double().numpy())  # softplus, (C, out, in)
            bias = self.biases[i].detach().double().numpy()  # (C, out, 1)
            out = np.repeat(bias, h.shape[2], axis=2).copy()
            for j in range(m.shape[2]):  # fixed order of the sum over inputs
                out += m[:, :, j : j + 1] * h[:, j : j + 1, :]
            if i < len(self.factors):
                out = out + np.tanh(self.factors[i].detach().double().numpy()) * np.tanh(out)
            h = out
        return h[:, 0, :]

    def table(self, tail_mass: float = 1e-7, radius: int = 1024) -> DiscreteTable:
        """One integer pmf per channel over the smallest integer range leaving ``tail_mass`` outside.

        Values outside the range are coded with an escape symbol (see :class:`DiscreteTable`). ``radius``
        bounds the search; channels wider than that simply escape more often.
        """
        grid = np.arange(-radius, radius + 2, dtype=np.float64) - 0.5  # half-integers -r-1/2 .. r+1/2
        logits = self._logits_cdf_numpy(np.broadcast_to(grid, (self.channels, grid.size)).copy())
        with np.errstate(over="ignore"):  # exp overflows to inf far in the tails: 1 / (1 + inf) = 0 is right
            cdf = 1.0 / (1.0 + np.exp(-logits))  # F at half-integers
            ccdf = 1.0 / (1.0 + np.exp(logits))  # 1 - F, accurate in the upper tail
        pmfs, offsets = [], []
        for c in range(self.channels):
            # symbol v (index v + radius) has mass cdf[k+1] - cdf[k]; keep v while mass remains on both sides
            keep = (cdf[c, 1:] > tail_mass / 2) & (ccdf[c, :-1] > tail_mass / 2)
            keep[radius] = True  # always code 0 directly
            idx = np.flatnonzero(keep)
            lo, hi = int(idx[0]), int(idx[-1])
            upper, lower = cdf[c, lo + 1 : hi + 2], cdf[c, lo : hi + 1]
            mass = np.abs(np.where(upper > 0.5, ccdf[c, lo : hi + 1] - ccdf[c, lo + 1 : hi + 2], upper - lower))
            escape = cdf[c, lo] + ccdf[c, hi + 1]
            pmfs.append(np.append(mass, escape))
            offsets.append(lo - radius)
        return DiscreteTable.from_float(pmfs, np.asarray(offsets, dtype=np.int64))
