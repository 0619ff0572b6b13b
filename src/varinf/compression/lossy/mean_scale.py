"""Mean-scale hyperprior: the hyper-latent predicts a mean *and* a scale for every element of :math:`y`.

Minnen, Ballé & Toderici (2018, arXiv:1809.02736), without the autoregressive context model::

    y ──[|y|, y]── h_a ── z ──[Q]── ẑ ──► entropy bottleneck          (pushed last, popped first)
    │                              │
    │                             h_s  (one integer network at coding time, 2M outputs)
    │                              ▼
    │                        σ (first M),  μ (last M)
    └── y - μ ──[Q]── s ~ N(0, σ²) per element, σ snapped to a level;   ŷ = s + μ

The coded symbol is the integer residual :math:`s = [y - \\mu]`, so the table rows stay the zero-mean Gaussian
rows of :class:`~varinf.compression.lossy.gaussian.ScaleLevels`. Both :math:`\\sigma` and :math:`\\mu` come out of the
*integer* hyper-synthesis (:mod:`varinf.compression.lossy.integer_net`), so the decoder derives the same row for
every symbol and the same :math:`\\hat y = s + \\mu` (a multiple of :math:`2^{-12}`) on every CPU. The scale
head has no ReLU: negative outputs select the lowest level, as the float model's lower bound
:math:`\\max(\\sigma, 0.11)` does in training.

Training (rates in bits): the rate uses the noisy residual :math:`y + u - \\mu` with :math:`u \\sim U(-\\tfrac12,
\\tfrac12)`; the synthesis gets :math:`[y - \\mu] + \\mu` with a straight-through gradient to :math:`y`.

:func:`~varinf.compression.lossy.warm_starts.mean_scale_from_hyperprior` turns a trained scale hyperprior into a mean-scale model computing the
same function (new input weights of :math:`h_a` and the mean head of :math:`h_s` start at zero), so training
can continue from the shipped model instead of from scratch.

Shapes: ``y`` ``(B, M, h, w)``, ``z`` ``(B, N_h, h/4, w/4)``; ``h`` and ``w`` multiples of 4.

Example::

    >>> import torch
    >>> from varinf.compression.lossy.model import CodecConfig, ImageCodec
    >>> codec = ImageCodec(CodecConfig(prior="mean-scale", channels=8, latent_channels=8, hyper_channels=8))
    >>> codec.eval()(torch.rand(1, 3, 64, 64), torch.tensor([0.0])).bits.shape
    torch.Size([1])
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..coding.ans import AnsStack
from .bottleneck import EntropyBottleneck
from .gaussian import ScaleLevels, gaussian_likelihood
from .integer_net import ACTIVATION_BITS
from .latents import FactorizedLatent, LatentOutput, LatentTables, _bits, _quantize, hyperprior_tables
from .transforms import _conv, _deconv

__all__ = ["MeanScaleLatent"]


def _hyper_analysis(n: int, m: int) -> nn.Sequential:
    """:math:`h_a`: ``[|y|, y]`` (2M channels) to :math:`z` (downsampling by 4)."""
    return nn.Sequential(_conv(2 * m, n, 3, 1), nn.ReLU(), _conv(n, n), nn.ReLU(), _conv(n, n))


def _hyper_synthesis(n: int, m: int) -> nn.Sequential:
    """:math:`h_s`: :math:`\\hat z` to ``[σ, μ]`` (2M channels, upsampling by 4); no final nonlinearity."""
    return nn.Sequential(_deconv(n, n), nn.ReLU(), _deconv(n, n), nn.ReLU(), _conv(n, 2 * m, 3, 1))


def _mean_scale_output(y, mean, scale, z_bits, training: bool) -> LatentOutput:
    """The y half of a mean-scale forward pass (shared with the checkerboard context model): y quantized around
    its mean, ``[y - μ] + μ`` with the gradient straight through to y (none to μ through this path), and its
    bits under N(μ, σ) with uniform noise in training."""
    residual = y - mean
    rounded = torch.round(residual)
    y_hat = y + (rounded + mean - y).detach()
    r_rate = residual + torch.empty_like(residual).uniform_(-0.5, 0.5) if training else rounded
    return LatentOutput(y_hat, _bits(gaussian_likelihood(r_rate, scale)), z_bits)


class MeanScaleLatent(nn.Module):
    """Mean-scale hyperprior with ``hyper_channels`` channels in :math:`z` (interface of
    :class:`~varinf.compression.lossy.latents.HyperpriorLatent`: ``forward``, ``push``, ``pop``, ``tables``)."""

    multiple = 64

    def __init__(self, latent_channels: int, hyper_channels: int, levels: ScaleLevels | None = None):
        super().__init__()
        self.latent_channels = int(latent_channels)
        self.h_a = _hyper_analysis(hyper_channels, latent_channels)
        self.h_s = _hyper_synthesis(hyper_channels, latent_channels)
        self.z_prior = EntropyBottleneck(hyper_channels)
        self.levels = levels or ScaleLevels()

    def _analysis(self, y: torch.Tensor) -> torch.Tensor:
        return self.h_a(torch.cat([torch.abs(y), y], dim=1))

    def forward(self, y: torch.Tensor) -> LatentOutput:
        z = self._analysis(y)
        z_rate, z_hat = _quantize(z, self.training)
        if self.training:  # h_s sees the noisy z, as in the scale hyperprior
            z_hat = z_rate
        scale, mean = self.h_s(z_hat).chunk(2, dim=1)
        return _mean_scale_output(y, mean, scale, _bits(self.z_prior.likelihood(z_rate)), self.training)

    def tables(self) -> LatentTables:
        return hyperprior_tables(self)

    def _entropy_parameters(self, z_symbols: np.ndarray, tables: LatentTables) -> tuple[np.ndarray, np.ndarray]:
        """(level index, mean as float64) per element of :math:`y`, from integers only."""
        out = tables.hyper_synthesis(z_symbols)  # fixed point with ACTIVATION_BITS fractional bits
        m = self.latent_channels
        scale_fp, mean_fp = out[:, :m], out[:, m:]
        shift = ACTIVATION_BITS - tables.levels.frac_bits
        scale_fp = scale_fp >> shift if shift >= 0 else scale_fp << -shift
        # |mean_fp| <= 2**26: mean_fp / 2**12 is exact in float64 (and in float32 for |mean| < 2**11)
        return tables.levels.index(scale_fp), mean_fp.astype(np.float64) / 2.0**ACTIVATION_BITS

    def push(self, y: torch.Tensor, stack: AnsStack, tables: LatentTables) -> None:
        z_symbols = torch.round(self._analysis(y)).to(torch.int64).numpy()
        index, mean = self._entropy_parameters(z_symbols, tables)
        residual = np.round(y.detach().double().numpy() - mean).astype(np.int64)
        stack.push(residual, index, tables.y_table)
        stack.push(z_symbols, FactorizedLatent._channel_index(z_symbols.shape), tables.z_table)

    def pop(self, stack: AnsStack, shape: tuple[int, int, int, int], tables: LatentTables) -> torch.Tensor:
        b, _, h, w = shape
        z_shape = (b, self.z_prior.channels, -(-h // 4), -(-w // 4))
        z_symbols = stack.pop(FactorizedLatent._channel_index(z_shape), tables.z_table)
        index, mean = self._entropy_parameters(z_symbols, tables)
        if index.shape != tuple(shape):
            raise ValueError(f"latent shape {tuple(shape)} does not match the hyperprior output {index.shape}")
        return torch.from_numpy(stack.pop(index, tables.y_table) + mean).float()
