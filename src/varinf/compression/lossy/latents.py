"""Latent codecs: how the quantized latent :math:`\\hat y` is modelled (training) and entropy coded (files).

Two priors share one interface (``forward`` for the rate estimate, ``push``/``pop`` for the bitstream,
``tables`` for the integer tables derived from the current weights):

:class:`FactorizedLatent` (Ballé et al. 2017, arXiv:1611.01704)::

    y ──[Q]── ŷ ──► entropy bottleneck (one learned density per channel)

:class:`HyperpriorLatent` (Ballé et al. 2018, arXiv:1802.01436)::

    y ──|·|── h_a ── z ──[Q]── ẑ ──► entropy bottleneck          (pushed last, popped first)
    │                            │
    │                           h_s  (integer network at coding time)
    │                            ▼
    └─────────[Q]─────── ŷ ~ N(0, σ²) per element, σ snapped to a fixed level table

[Q] is additive uniform noise in training and rounding otherwise. Units: bits; shapes ``(B, M, h, w)``.
For the synthesis, the rounded value is passed with a straight-through gradient even in training
(the decoder then sees the values it will see at test time), while the rate uses the noisy value.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..coding.ans import AnsStack
from ..coding.tables import DiscreteTable
from .bottleneck import EntropyBottleneck
from .gaussian import ScaleLevels, gaussian_likelihood
from .integer_net import ACTIVATION_BITS, IntegerNetwork
from .transforms import hyper_analysis, hyper_synthesis

__all__ = ["FactorizedLatent", "HyperpriorLatent", "LatentOutput", "LatentTables"]

TAIL_MASS = 1e-7


@dataclass
class LatentOutput:
    """Result of a latent codec's forward pass.

    Attributes:
        y_hat: ``(B, M, h, w)`` value passed to the synthesis (rounded; straight-through in training).
        y_bits: ``(B,)`` estimated bits of :math:`\\hat y` (``-sum log2 p``).
        z_bits: ``(B,)`` estimated bits of the hyper-latent (zeros for the factorized prior).
    """

    y_hat: torch.Tensor
    y_bits: torch.Tensor
    z_bits: torch.Tensor

    @property
    def bits(self) -> torch.Tensor:
        """``(B,)`` total estimated bits."""
        return self.y_bits + self.z_bits


@dataclass(frozen=True, eq=False)
class LatentTables:
    """Everything the bitstream depends on besides the symbols: integer tables and the integer :math:`h_s`."""

    y_table: DiscreteTable
    z_table: DiscreteTable | None = None
    levels: ScaleLevels | None = None
    hyper_synthesis: IntegerNetwork | None = None
    context: object | None = None  # checkerboard: the integer context and entropy-parameter network

    def digest(self) -> int:
        """32-bit digest of the tables and the integer network weights (recorded in every file; computed once)."""
        if "_digest" not in self.__dict__:  # every decode checks it: memoized on this (immutable) instance
            object.__setattr__(self, "_digest", self._compute_digest())
        return self.__dict__["_digest"]

    def _compute_digest(self) -> int:
        crc = self.y_table.digest()
        if self.z_table is not None:
            crc = zlib.crc32(self.z_table.digest().to_bytes(4, "little"), crc)
        if self.levels is not None:
            crc = zlib.crc32(self.levels.boundaries.astype("<i8").tobytes(), crc)
        if self.hyper_synthesis is not None:
            for layer in self.hyper_synthesis.layers:
                crc = zlib.crc32(layer.weight.astype("<i8").tobytes(), crc)
                crc = zlib.crc32(layer.bias.astype("<i8").tobytes(), crc)
        if self.context is not None:
            for array in self.context.weights():
                crc = zlib.crc32(array.astype("<i8").tobytes(), crc)
        return crc


def _quantize(v: torch.Tensor, noise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(value for the rate model, value for the decoder)."""
    rounded = v + (torch.round(v) - v).detach()  # straight-through rounding
    if noise:
        return v + torch.empty_like(v).uniform_(-0.5, 0.5), rounded
    return rounded, rounded


def _bits(likelihood: torch.Tensor) -> torch.Tensor:
    return -torch.log2(likelihood).flatten(1).sum(dim=1)


class FactorizedLatent(nn.Module):
    """Factorized (entropy bottleneck) prior over ``M`` channels."""

    multiple = 16

    def __init__(self, latent_channels: int):
        super().__init__()
        self.prior = EntropyBottleneck(latent_channels)

    def forward(self, y: torch.Tensor) -> LatentOutput:
        y_rate, y_hat = _quantize(y, self.training)
        bits = _bits(self.prior.likelihood(y_rate))
        return LatentOutput(y_hat, bits, torch.zeros_like(bits))

    def tables(self) -> LatentTables:
        return LatentTables(self.prior.table(TAIL_MASS))

    @staticmethod
    def _channel_index(shape: tuple[int, ...]) -> np.ndarray:
        return np.broadcast_to(np.arange(shape[1])[None, :, None, None], shape)

    def push(self, y: torch.Tensor, stack: AnsStack, tables: LatentTables) -> None:
        symbols = torch.round(y).to(torch.int64).numpy()
        stack.push(symbols, self._channel_index(symbols.shape), tables.y_table)

    def pop(self, stack: AnsStack, shape: tuple[int, int, int, int], tables: LatentTables) -> torch.Tensor:
        return torch.from_numpy(stack.pop(self._channel_index(shape), tables.y_table)).float()


def hyperprior_tables(latent) -> LatentTables:
    """Coding tables of a hyperprior latent (scale or mean-scale): its scale levels, the factorized prior of z
    and the integer version of its hyper-synthesis ``h_s``."""
    return LatentTables(
        y_table=latent.levels.table(TAIL_MASS),
        z_table=latent.z_prior.table(TAIL_MASS),
        levels=latent.levels,
        hyper_synthesis=IntegerNetwork.from_sequential(latent.h_s),
    )


class HyperpriorLatent(nn.Module):
    """Scale hyperprior with ``hyper_channels`` channels in :math:`z` and a ``levels``-row Gaussian table."""

    multiple = 64

    def __init__(self, latent_channels: int, hyper_channels: int, levels: ScaleLevels | None = None):
        super().__init__()
        self.h_a = hyper_analysis(hyper_channels, latent_channels)
        self.h_s = hyper_synthesis(hyper_channels, latent_channels)
        self.z_prior = EntropyBottleneck(hyper_channels)
        self.levels = levels or ScaleLevels()

    def forward(self, y: torch.Tensor) -> LatentOutput:
        z = self.h_a(torch.abs(y))
        z_rate, z_hat = _quantize(z, self.training)
        if self.training:  # classic hyperprior training: h_s sees the noisy z (no straight-through needed)
            z_hat = z_rate
        scale = self.h_s(z_hat)
        y_rate, y_hat = _quantize(y, self.training)
        y_bits = _bits(gaussian_likelihood(y_rate, scale))
        z_bits = _bits(self.z_prior.likelihood(z_rate))
        return LatentOutput(y_hat, y_bits, z_bits)

    def tables(self) -> LatentTables:
        return hyperprior_tables(self)

    def _scale_index(self, z_symbols: np.ndarray, tables: LatentTables) -> np.ndarray:
        scale_fp = tables.hyper_synthesis(z_symbols)
        # the integer net's output has ACTIVATION_BITS fractional bits; the level boundaries use frac_bits
        shift = ACTIVATION_BITS - tables.levels.frac_bits
        if shift > 0:
            scale_fp = scale_fp >> shift
        elif shift < 0:
            scale_fp = scale_fp << -shift
        return tables.levels.index(scale_fp)

    def push(self, y: torch.Tensor, stack: AnsStack, tables: LatentTables) -> None:
        z_symbols = torch.round(self.h_a(torch.abs(y))).to(torch.int64).numpy()
        y_symbols = torch.round(y).to(torch.int64).numpy()
        stack.push(y_symbols, self._scale_index(z_symbols, tables), tables.y_table)
        stack.push(z_symbols, FactorizedLatent._channel_index(z_symbols.shape), tables.z_table)

    def pop(self, stack: AnsStack, shape: tuple[int, int, int, int], tables: LatentTables) -> torch.Tensor:
        b, _, h, w = shape
        z_shape = (b, self.z_prior.channels, -(-h // 4), -(-w // 4))
        z_symbols = stack.pop(FactorizedLatent._channel_index(z_shape), tables.z_table)
        index = self._scale_index(z_symbols, tables)
        if index.shape != tuple(shape):
            raise ValueError(f"latent shape {tuple(shape)} does not match the hyperprior output {index.shape}")
        return torch.from_numpy(stack.pop(index, tables.y_table)).float()
