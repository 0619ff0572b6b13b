"""Checkerboard context on top of the mean-scale hyperprior: two decoding passes, entropy parameters in integers.

He, Zheng, Sun, Wang & Qin (2021, "Checkerboard context model for efficient learned image compression",
arXiv:2103.15306). The latent positions are split like a checkerboard: *anchors* (``(i + j)`` even) are coded
with the hyperprior's mean and scale alone; every other position also sees the decoded anchors around it::

    y ──[|y|, y]── h_a ── z ──[Q]── ẑ ──► entropy bottleneck                      (pushed last, popped first)
                                   │
                                  h_s (integer)  ──► hyper = [σ_h, μ_h]           (B, 2M, h, w)
                                   │
    anchors:      s = [y − μ_h],  ŷ = s + μ_h,  s ~ N(0, σ_h²)                      (pass 1)
                                   │
    non-anchors:  ctx = C ⋆ ŷ_anchors   (5x5, only the 12 taps that fall on anchors)
                  [σ, μ] = hyper + E([hyper, ctx])      E: three 1x1 layers, ReLU between
                  s = [y − μ],  ŷ = s + μ,  s ~ N(0, σ²)                            (pass 2)

Both passes run over all positions of their kind at once (no serial scan), so decoding stays a few vectorized
integer matrix products. Everything that picks a table row or a mean — :math:`h_s`, the context convolution
``C`` and the entropy-parameter network ``E`` — is evaluated as an **integer network** (weights
:math:`\\lfloor 2^{16} w + \\tfrac12 \\rfloor`, activations with 12 fractional bits, exact products in float64 BLAS
when every partial sum provably stays below :math:`2^{53}` and in int64 otherwise; see
:mod:`varinf.compression.coding.integer_net`), so the symbols decode the same on every CPU and thread count.
The decoded anchors enter ``C`` in fixed point (:math:`\\hat y \\cdot 2^{12}`, an integer), clipped to
:math:`\\pm 2^{26}` on both sides.

Training (rates in bits) follows :mod:`~varinf.compression.lossy.mean_scale`: noisy residuals for the rate,
rounded residuals plus means (straight-through to :math:`y`) for the synthesis and for the context.

:func:`~varinf.compression.lossy.warm_starts.checkerboard_from_mean_scale` turns a trained mean-scale codec into a checkerboard codec computing the same
function (``E``'s last layer starts at zero), optionally with more quality levels (new gains extrapolated
linearly in :math:`\\log\\lambda`), so training continues from the shipped model.

Shapes: ``y`` ``(B, M, h, w)``, ``z`` ``(B, N_h, h/4, w/4)``; ``h`` and ``w`` multiples of 4.

Example::

    >>> import torch
    >>> from varinf.compression.lossy.model import CodecConfig, ImageCodec
    >>> codec = ImageCodec(CodecConfig(prior="checkerboard", channels=8, latent_channels=8, hyper_channels=8))
    >>> codec.eval()(torch.rand(1, 3, 64, 64), torch.tensor([0.0])).bits.shape
    torch.Size([1])
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..coding.ans import AnsStack
from ..coding.integer_net import exact_matmul, round_shift
from .bottleneck import EntropyBottleneck
from .gaussian import ScaleLevels
from .integer_net import ACTIVATION_BITS, ACTIVATION_MAX, WEIGHT_BITS
from .latents import FactorizedLatent, LatentOutput, LatentTables, _bits, _quantize, hyperprior_tables
from .mean_scale import _hyper_analysis, _hyper_synthesis, _mean_scale_output

__all__ = ["CONTEXT_TAPS", "CheckerboardLatent", "IntegerContext", "anchor_mask"]

KERNEL = 5
# offsets (di, dj) of a 5x5 window that land on anchors when centred on a non-anchor: di + dj odd
CONTEXT_TAPS = tuple((di, dj) for di in range(-2, 3) for dj in range(-2, 3) if (di + dj) % 2)
BLOCK = 4096  # positions per block of the integer context network (~50 MB of int64 columns for M = 128)


def anchor_mask(h: int, w: int) -> np.ndarray:
    """``(h, w)`` bool: True at anchors, the positions with ``i + j`` even (coded first)."""
    i, j = np.indices((h, w))
    return (i + j) % 2 == 0


def _tap_mask(kernel: int = KERNEL) -> torch.Tensor:
    mask = torch.zeros(kernel, kernel)
    for di, dj in CONTEXT_TAPS:
        mask[di + kernel // 2, dj + kernel // 2] = 1.0
    return mask


class CheckerboardLatent(nn.Module):
    """Mean-scale hyperprior plus a checkerboard context (interface of
    :class:`~varinf.compression.lossy.latents.HyperpriorLatent`: ``forward``, ``push``, ``pop``, ``tables``).

    ``context_channels`` channels leave the masked 5x5 convolution ``C``; ``hidden`` is the width of ``E``.
    """

    multiple = 64

    def __init__(self, latent_channels: int, hyper_channels: int, context_channels: int = 128, hidden: int = 192,
                 levels: ScaleLevels | None = None):  # fmt: skip
        super().__init__()
        m = self.latent_channels = int(latent_channels)
        self.h_a = _hyper_analysis(hyper_channels, m)
        self.h_s = _hyper_synthesis(hyper_channels, m)
        self.z_prior = EntropyBottleneck(hyper_channels)
        self.levels = levels or ScaleLevels()
        self.context = nn.Conv2d(m, context_channels, KERNEL, padding=KERNEL // 2)
        self.register_buffer("tap_mask", _tap_mask(), persistent=False)
        with torch.no_grad():
            self.context.weight.mul_(self.tap_mask)  # taps off the anchors stay zero (their gradient is zero)
        self.entropy_parameters = nn.Sequential(
            nn.Conv2d(2 * m + context_channels, hidden, 1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
            nn.Conv2d(hidden, 2 * m, 1),
        )  # fmt: skip

    def _analysis(self, y: torch.Tensor) -> torch.Tensor:
        return self.h_a(torch.cat([torch.abs(y), y], dim=1))

    def forward(self, y: torch.Tensor) -> LatentOutput:
        z = self._analysis(y)
        z_rate, z_hat = _quantize(z, self.training)
        if self.training:  # h_s sees the noisy z, as in the scale hyperprior
            z_hat = z_rate
        hyper = self.h_s(z_hat)
        anchors = torch.from_numpy(anchor_mask(*y.shape[-2:])).to(y.device, y.dtype)
        mean_h = hyper[:, self.latent_channels :]
        y_anchor = (y + (torch.round(y - mean_h) + mean_h - y).detach()) * anchors  # decoded anchors, zero elsewhere
        ctx = F.conv2d(y_anchor, self.context.weight * self.tap_mask, self.context.bias, padding=KERNEL // 2)
        params = hyper + self.entropy_parameters(torch.cat([hyper, ctx], dim=1)) * (1.0 - anchors)
        scale, mean = params.chunk(2, dim=1)
        return _mean_scale_output(y, mean, scale, _bits(self.z_prior.likelihood(z_rate)), self.training)

    # ------------------------------------------------------------------ bitstream
    def tables(self) -> LatentTables:
        context = IntegerContext.from_modules(self.context, self.entropy_parameters)
        return replace(hyperprior_tables(self), context=context)

    def _rows_and_means(self, params_fp: np.ndarray, tables: LatentTables) -> tuple[np.ndarray, np.ndarray]:
        """(level index, mean in fixed point) from ``[σ, μ]`` with ACTIVATION_BITS fractional bits along axis 1."""
        m = self.latent_channels
        scale_fp, mean_fp = params_fp[:, :m], params_fp[:, m:]
        shift = ACTIVATION_BITS - tables.levels.frac_bits
        scale_fp = scale_fp >> shift if shift >= 0 else scale_fp << -shift
        return tables.levels.index(scale_fp), mean_fp

    def _passes(self, z_symbols: np.ndarray, tables: LatentTables, code_anchors, code_rest) -> np.ndarray:
        """Run both passes: ``code_anchors(rows, mean_fp) -> symbols`` for the anchors (``(B, M, P_a)``), then
        ``code_rest`` likewise for the other positions. Returns ``ŷ`` in fixed point ``(B, M, h, w)`` int64."""
        hyper = tables.hyper_synthesis(z_symbols)  # (B, 2M, h, w), ACTIVATION_BITS fractional bits
        b, _, h, w = hyper.shape
        anchors = anchor_mask(h, w)
        rows, mean_fp = self._rows_and_means(hyper[:, :, anchors], tables)
        y_fp = np.zeros((b, self.latent_channels, h, w), dtype=np.int64)
        y_fp[:, :, anchors] = (code_anchors(rows, mean_fp) << ACTIVATION_BITS) + mean_fp
        params = tables.context(y_fp, hyper, ~anchors)  # (B, 2M, P_n)
        rows, mean_fp = self._rows_and_means(params, tables)
        y_fp[:, :, ~anchors] = (code_rest(rows, mean_fp) << ACTIVATION_BITS) + mean_fp
        return y_fp

    def push(self, y: torch.Tensor, stack: AnsStack, tables: LatentTables) -> None:
        z_symbols = torch.round(self._analysis(y)).to(torch.int64).numpy()
        y64 = y.detach().double().numpy()
        anchors = anchor_mask(*y.shape[-2:])
        coded: list[tuple[np.ndarray, np.ndarray]] = []

        def code(where):
            def symbols(rows, mean_fp):
                s = np.round(y64[:, :, where] - mean_fp / 2.0**ACTIVATION_BITS).astype(np.int64)
                coded.append((s, rows))
                return s

            return symbols

        self._passes(z_symbols, tables, code(anchors), code(~anchors))
        for s, rows in coded[::-1]:  # LIFO: the second pass first, so that the decoder pops the anchors first
            stack.push(s, rows, tables.y_table)
        stack.push(z_symbols, FactorizedLatent._channel_index(z_symbols.shape), tables.z_table)

    def pop(self, stack: AnsStack, shape: tuple[int, int, int, int], tables: LatentTables) -> torch.Tensor:
        b, m, h, w = shape
        z_shape = (b, self.z_prior.channels, -(-h // 4), -(-w // 4))
        z_symbols = stack.pop(FactorizedLatent._channel_index(z_shape), tables.z_table)
        if (b, m, 4 * z_shape[2], 4 * z_shape[3]) != tuple(shape) or m != self.latent_channels:
            raise ValueError(f"latent shape {tuple(shape)} does not match the hyperprior output")

        def decode(rows, mean_fp):
            return stack.pop(rows, tables.y_table)

        y_fp = self._passes(z_symbols, tables, decode, decode)
        return torch.from_numpy(y_fp / 2.0**ACTIVATION_BITS).float()


@dataclass(frozen=True, eq=False)
class _Dense:
    """One integer 1x1 layer on ``(P, in)`` rows: ``clip(round_shift(x W + b, WEIGHT_BITS))``, ReLU or not."""

    weight: np.ndarray  # (in, out) int64
    bias: np.ndarray  # (out,) int64 with WEIGHT_BITS + ACTIVATION_BITS fractional bits
    relu: bool

    @classmethod
    def of(cls, weight: torch.Tensor, bias: torch.Tensor, relu: bool) -> _Dense:
        w = weight.detach().double().cpu().numpy().reshape(weight.shape[0], -1).T
        b = bias.detach().double().cpu().numpy()
        w_int = np.floor(w * 2.0**WEIGHT_BITS + 0.5).astype(np.int64)
        b_int = np.floor(b * 2.0 ** (WEIGHT_BITS + ACTIVATION_BITS) + 0.5).astype(np.int64)
        if int(np.abs(w_int).sum(axis=0).max()) * ACTIVATION_MAX + int(np.abs(b_int).max()) >= 2**62:
            raise ValueError("integer context network: weights too large for exact int64 accumulation")
        return cls(np.ascontiguousarray(w_int), b_int, relu)

    @cached_property
    def _abs_col_sum(self) -> int:
        return int(np.abs(self.weight).sum(axis=0).max())

    def __call__(self, x: np.ndarray) -> np.ndarray:
        acc = exact_matmul(x, self.weight, self._abs_col_sum) + self.bias
        return np.clip(round_shift(acc, WEIGHT_BITS), 0 if self.relu else -ACTIVATION_MAX, ACTIVATION_MAX)


@dataclass(frozen=True, eq=False)
class IntegerContext:
    """The context convolution ``C`` (its 12 anchor taps) and the entropy-parameter network ``E`` in integers."""

    context: _Dense  # (12 M, C): rows ordered tap-major, as :func:`gather_taps` lays them out
    layers: tuple[_Dense, ...]

    @classmethod
    def from_modules(cls, context: nn.Conv2d, entropy_parameters: nn.Sequential) -> IntegerContext:
        k = context.kernel_size[0] // 2
        taps = torch.stack([context.weight[:, :, di + k, dj + k] for di, dj in CONTEXT_TAPS])  # (12, C, M)
        ctx = _Dense.of(taps.permute(1, 0, 2).reshape(context.out_channels, -1), context.bias, relu=False)
        convs = [m for m in entropy_parameters if isinstance(m, nn.Conv2d)]
        layers = tuple(_Dense.of(c.weight, c.bias, relu=i + 1 < len(convs)) for i, c in enumerate(convs))
        return cls(ctx, layers)

    def weights(self) -> list[np.ndarray]:
        """Every integer array, in a fixed order (for the table digest)."""
        return [a for layer in (self.context, *self.layers) for a in (layer.weight, layer.bias)]

    def __call__(self, y_fp: np.ndarray, hyper: np.ndarray, where: np.ndarray) -> np.ndarray:
        """``[σ, μ]`` (fixed point, ``(B, 2M, P)``) at the positions ``where`` (``(h, w)`` bool) from the decoded
        anchors ``y_fp`` (``(B, M, h, w)`` fixed point, zero elsewhere) and the hyperprior output ``hyper``.
        Positions go through in blocks of :data:`BLOCK` (bounded memory for large images)."""
        b = y_fp.shape[0]
        ii, jj = np.nonzero(where)
        out = np.empty((b, hyper.shape[1], len(ii)), dtype=np.int64)
        for start in range(0, len(ii), BLOCK):
            at = (ii[start : start + BLOCK], jj[start : start + BLOCK])
            # decoded anchors beyond 2**14 in size come only from crafted files: clipped, as the encoder does
            x = np.clip(gather_taps(y_fp, *at), -ACTIVATION_MAX, ACTIVATION_MAX)  # (B p, 12 M)
            hyper_rows = hyper[:, :, at[0], at[1]].transpose(0, 2, 1).reshape(x.shape[0], -1)  # (B p, 2M)
            h = np.concatenate([hyper_rows, self.context(x)], axis=1)
            for layer in self.layers:
                h = layer(h)
            rows = np.clip(hyper_rows + h, -ACTIVATION_MAX, ACTIVATION_MAX)
            out[:, :, start : start + BLOCK] = rows.reshape(b, -1, rows.shape[1]).transpose(0, 2, 1)
        return out


def gather_taps(y_fp: np.ndarray, ii: np.ndarray, jj: np.ndarray) -> np.ndarray:
    """``(B * P, 12 * M)`` int64: for each position ``(ii[k], jj[k])`` (batch-major), the values of ``y_fp``
    ``(B, M, h, w)`` at the :data:`CONTEXT_TAPS` around it (zero outside the image), tap-major."""
    b, m, h, w = y_fp.shape
    cols = np.zeros((b, len(ii), len(CONTEXT_TAPS), m), dtype=y_fp.dtype)
    for t, (di, dj) in enumerate(CONTEXT_TAPS):
        i, j = ii + di, jj + dj
        inside = (i >= 0) & (i < h) & (j >= 0) & (j < w)
        cols[:, inside, t, :] = y_fp[:, :, i[inside], j[inside]].transpose(0, 2, 1)
    return cols.reshape(b * len(ii), len(CONTEXT_TAPS) * m)
