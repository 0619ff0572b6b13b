r"""Integer networks (Ballé, Johnston & Minnen 2019, arXiv:1810.01285): layers whose outputs are exact integers.

A coder's tables must be chosen by numbers that are the same on every CPU, thread count and build. A float network
is not (kernels sum in different orders); an integer network is. Weights, biases and activations are fixed-point
integers; a layer computes

.. math::

    \text{acc} = W^{\mathbb Z} a + b^{\mathbb Z}, \qquad
    a' = T_f\big[\mathrm{rs}(\text{acc},\ F_w + F_{in} - F_a)\big], \qquad
    \mathrm{rs}(v, s) = \lfloor v / 2^{s} + 1/2 \rfloor \ \text{(round half up)},

with :math:`W^{\mathbb Z} = \lfloor 2^{F_w} W + 1/2 \rfloor` (elementwise, so the same on every machine) and
:math:`T_f` an exactly rounded table of the nonlinearity (:mod:`varinf.compression.coding.lookup`).

**Exact at BLAS speed.** A float64 product of integer-valued matrices is exact, whatever the summation order,
blocking, FMA use or thread count, as long as every partial sum stays below :math:`2^{53}`; that holds when
:math:`\max|a| \cdot \max_j \sum_i |W_{ij}| + \max|b| < 2^{53}`, which :class:`IntegerDense` checks once when it is
built (from the static bound of its input) and :func:`exact_matmul` checks per call (falling back to int64).

Shapes: :class:`IntegerDense` maps ``(n, in)`` -> ``(n, out)``; :class:`IntegerConv` maps ``(B, C, h, w)`` int64
-> ``(B, C', h', w')`` int64. Units: an array with ``F`` fractional bits holds ``value * 2**F``.

Example::

    >>> import numpy as np, torch
    >>> from varinf.compression.coding.integer_net import integer_mlp
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    >>> layers, out_bits = integer_mlp(list(net), in_bits=0, in_max=1)
    >>> x = np.array([[0.0, 1.0, 1.0]])
    >>> for layer in layers:
    ...     x = layer(x)
    >>> bool(np.allclose(x / 2.0**out_bits, net(torch.tensor([[0.0, 1.0, 1.0]])).detach().numpy(), atol=1e-3))
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from .lookup import lookup_table

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_BITS",
    "ACTIVATION_LIMIT",
    "EXACT_FLOAT",
    "WEIGHT_BITS",
    "IntegerActivation",
    "IntegerConv",
    "IntegerConvolution",
    "IntegerDense",
    "Reshape",
    "conv_geometry",
    "exact_matmul",
    "fixed_point",
    "integer_mlp",
    "linear_arrays",
    "round_shift",
]

WEIGHT_BITS = 16  # F_w: weights are multiples of 2**-16
ACTIVATION_BITS = 12  # F_a: activations, and the resolution of a nonlinearity's input, are multiples of 2**-12
ACTIVATION_LIMIT = 2**12  # unbounded activations (ReLU, ELU, SiLU) are clipped to this (float units)
EXACT_FLOAT = 2**53  # integers below this are exact in float64, and so are sums of them
_EXACT_INT = 2**62


def fixed_point(values, bits: int) -> np.ndarray:
    """Elementwise :math:`\\lfloor 2^{bits} v + 1/2\\rfloor` of float values as float64 integers (exact: a power-of-two
    scaling and a floor are correctly rounded everywhere)."""
    return np.floor(np.asarray(values, dtype=np.float64) * 2.0**bits + 0.5)


def round_shift(acc: np.ndarray, shift: int) -> np.ndarray:
    """:math:`\\lfloor \\text{acc}/2^{\\text{shift}} + 1/2\\rfloor` for integer-valued float64 (below 2**52) or int64."""
    if shift <= 0:
        return acc * (1 << -shift)
    if acc.dtype.kind == "f":
        return np.floor(acc * 2.0**-shift + 0.5)
    return (acc + (1 << (shift - 1))) >> shift  # arithmetic shift: floor division by 2**shift


def exact_matmul(x: np.ndarray, w: np.ndarray, w_abs_col_sum: int | None = None) -> np.ndarray:
    """``x @ w`` for int64 ``x (n, k)`` and ``w (k, m)``, exactly: float64 BLAS when every partial sum provably stays
    below 2**53 (``max|x| * max_j sum_i |w_ij|``), int64 otherwise. Returns int64."""
    if w_abs_col_sum is None:
        w_abs_col_sum = int(np.abs(w).sum(axis=0).max()) if w.size else 0
    x_max = int(np.abs(x).max()) if x.size else 0
    if x_max * w_abs_col_sum < EXACT_FLOAT:
        return (x.astype(np.float64) @ w.astype(np.float64)).astype(np.int64)
    return x @ w


@dataclass(frozen=True, eq=False)
class IntegerDense:
    """``acc = x @ weight + bias`` on float64 integers; exact by the static bound checked in :meth:`build`."""

    weight: np.ndarray  # (in, out) float64 integers
    bias: np.ndarray  # (out,) float64 integers, out_bits fractional bits
    out_bits: int  # fractional bits of the accumulator: weight bits + input bits
    bound: int  # max |acc| over every input with |x| <= the builder's in_max

    @classmethod
    def build(cls, weight, bias, in_bits: int, in_max: float, weight_bits: int = WEIGHT_BITS) -> IntegerDense:
        """From float ``weight (out, in)`` (torch layout) and ``bias (out,)``; ``|x| <= in_max`` (fixed point)."""
        w = fixed_point(np.asarray(weight, dtype=np.float64).T, weight_bits)
        out_bits = weight_bits + in_bits
        b = fixed_point(bias, out_bits) if bias is not None else np.zeros(w.shape[1])
        bound = int(in_max * np.abs(w).sum(axis=0).max() + np.abs(b).max())
        if bound >= EXACT_FLOAT // 2:
            raise ValueError(
                f"integer network: weights too large for exact evaluation (|acc| up to 2^{np.log2(bound):.1f})"
            )
        return cls(np.ascontiguousarray(w), b, out_bits, bound)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weight + self.bias  # exact (|partial sums| < 2**52): any BLAS, any thread count


@dataclass(frozen=True, eq=False)
class IntegerActivation:
    """A nonlinearity from an accumulator with ``in_bits`` fractional bits to ``ACTIVATION_BITS``.

    Tables cover ``[lo, hi] * 2**-ACTIVATION_BITS`` (saturating beyond); ``linear_right`` continues with the
    identity above ``hi`` (ELU, SiLU, ReLU), clipped to ``ACTIVATION_LIMIT``.
    """

    name: str
    in_bits: int

    @property
    def spec(self) -> tuple[int, int, bool]:
        return _ACTIVATION_SPECS[self.name]

    @property
    def table(self) -> np.ndarray | None:
        lo, hi, _ = self.spec
        if self.name == "relu":
            return None
        return lookup_table(self.name, ACTIVATION_BITS, lo, hi, float(2**ACTIVATION_BITS))

    @property
    def max_abs(self) -> int:
        """Largest ``|output|`` (fixed point), the next layer's static input bound."""
        return 2**ACTIVATION_BITS if self.name == "tanh" else ACTIVATION_LIMIT * 2**ACTIVATION_BITS

    def __call__(self, acc: np.ndarray) -> np.ndarray:
        lo, hi, linear_right = self.spec
        v = round_shift(acc, self.in_bits - ACTIVATION_BITS)
        if self.name == "relu":
            return np.clip(v, 0, self.max_abs, out=v)
        table = self.table
        out = table.take((np.clip(v, lo, hi, out=np.empty_like(v)) - lo).astype(np.intp))
        if linear_right:
            np.copyto(out, np.minimum(v, self.max_abs), where=v > hi)
        return out


# name -> (lo, hi, linear_right) in units of 2**-ACTIVATION_BITS: beyond [lo, hi] the exactly rounded function
# equals its saturation value (or, with linear_right, the identity on the right) to within one unit
_ACTIVATION_SPECS = {
    "tanh": (-5 * 2**ACTIVATION_BITS, 5 * 2**ACTIVATION_BITS, False),
    "elu": (-11 * 2**ACTIVATION_BITS, 0, True),
    "silu": (-14 * 2**ACTIVATION_BITS, 14 * 2**ACTIVATION_BITS, True),
    "relu": (0, 0, True),
}
ACTIVATIONS = {nn.Tanh: "tanh", nn.ELU: "elu", nn.SiLU: "silu", nn.ReLU: "relu"}


@dataclass(frozen=True, eq=False)
class IntegerConvolution:
    """A convolution (or transposed convolution) in the float64-integer chain: accumulator only, like
    :class:`IntegerDense`; exact by the static bound checked when it is built."""

    conv: IntegerConv  # geometry and integer weights (its shift/clip are not used here)
    out_bits: int
    bound: int

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.conv.accumulate(x)


@dataclass(frozen=True, eq=False)
class Reshape:
    """``(n, ...) -> (n, *shape)`` (the chain's ``Flatten``/``Unflatten``; C order, as torch)."""

    shape: tuple[int, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), *self.shape)


def integer_mlp(
    modules: list[nn.Module],
    in_bits: int,
    in_max: float,
    input_divisor: int = 1,
    in_shape: tuple[int, ...] | None = None,
) -> tuple[list, int]:
    """Integer layers for a chain of ``Linear`` / ``Conv2d`` / ``ConvTranspose2d`` / activation / ``Flatten`` /
    ``Unflatten`` modules. Returns the layers (call them in order on ``(n, *in_shape)`` float64 integers with
    ``in_bits`` fractional bits, ``|x| <= in_max``; ``in_shape`` defaults to flat) and the fractional bits of the
    last output (an accumulator if the chain ends with a linear layer). ``input_divisor`` ``d``: the float network
    sees ``x / d``; the first layer's weights are divided by ``d`` (elementwise) and get ``ceil(log2 d)`` extra
    fractional bits, so they keep their precision."""
    layers: list = []
    bits, bound = in_bits, in_max
    shape = None if in_shape is None else tuple(in_shape)
    for m in modules:
        if isinstance(m, nn.Identity | nn.Dropout):
            continue
        if isinstance(m, nn.Flatten):
            if shape is not None and len(shape) > 1:
                shape = (math.prod(shape),)
                layers.append(Reshape(shape))
        elif isinstance(m, nn.Unflatten):
            shape = tuple(m.unflattened_size)
            layers.append(Reshape(shape))
        elif isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            linear = isinstance(m, nn.Linear)
            w, b, geometry = (*linear_arrays(m), None) if linear else conv_geometry(m)
            extra = 0
            if not layers and input_divisor != 1:
                w, extra = w / input_divisor, int(np.ceil(np.log2(input_divisor)))
            if linear:
                layer = IntegerDense.build(w, b, bits, bound, WEIGHT_BITS + extra)
                shape = (w.shape[0],)
            else:
                layer = _convolution(w, b, geometry, bits, bound, WEIGHT_BITS + extra)
                shape = _conv_out_shape(layer.conv, shape)
            layers.append(layer)
            bits, bound = layer.out_bits, layer.bound
        elif type(m) in ACTIVATIONS:
            if isinstance(m, nn.ELU) and m.alpha != 1.0:
                raise ValueError(f"integer network: ELU with alpha={m.alpha} is not supported")
            act = IntegerActivation(ACTIVATIONS[type(m)], bits)
            layers.append(act)
            bits, bound = ACTIVATION_BITS, act.max_abs
        else:
            raise ValueError(
                f"integer network: unsupported layer {type(m).__name__} "
                "(Linear, Conv2d, ConvTranspose2d, Flatten, Unflatten and tanh/ReLU/ELU/SiLU)"
            )
    return layers, bits


def linear_arrays(m: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """A ``Linear`` layer's float64 weight ``(out, in)`` and bias ``(out,)`` (zeros without one)."""
    w = m.weight.detach().double().cpu().numpy()
    b = m.bias.detach().double().cpu().numpy() if m.bias is not None else np.zeros(w.shape[0])
    return w, b


def conv_geometry(m: nn.Module) -> tuple[np.ndarray, np.ndarray, tuple[int, tuple[int, int, int, int], int]]:
    """A ``Conv2d`` / ``ConvTranspose2d`` as a correlation: float64 kernel ``(out, in, k, k)``, bias ``(out,)``, and
    (upsample, pad (top, bottom, left, right), stride). A transposed convolution is zero insertion (``upsample`` =
    its stride) and a correlation with the flipped, transposed kernel."""
    if m.groups != 1 or m.dilation != (1, 1) or len(set(m.kernel_size)) > 1 or len(set(m.stride)) > 1:
        raise ValueError(f"integer network: unsupported convolution {m} (square, ungrouped, undilated only)")
    if len(set(m.padding)) > 1 or not isinstance(m.padding[0], int) or getattr(m, "padding_mode", "zeros") != "zeros":
        raise ValueError(f"integer network: unsupported padding in {m}")
    w = m.weight.detach().double().cpu().numpy()
    k, p, s = m.kernel_size[0], m.padding[0], m.stride[0]
    if isinstance(m, nn.ConvTranspose2d):
        w = np.ascontiguousarray(np.flip(w, axis=(2, 3)).transpose(1, 0, 2, 3))
        extra = m.output_padding[0]
        geometry = (s, (k - 1 - p, k - 1 - p + extra, k - 1 - p, k - 1 - p + extra), 1)
    else:
        geometry = (1, (p, p, p, p), s)
    b = m.bias.detach().double().cpu().numpy() if m.bias is not None else np.zeros(w.shape[0])
    return w, b, geometry


def _convolution(w, b, geometry, in_bits: int, in_max: float, weight_bits: int) -> IntegerConvolution:
    upsample, pad, stride = geometry
    w_int = fixed_point(w, weight_bits)
    out_bits = weight_bits + in_bits
    b_int = fixed_point(b, out_bits)
    bound = int(in_max * np.abs(w_int).reshape(len(w_int), -1).sum(axis=1).max() + np.abs(b_int).max())
    if bound >= EXACT_FLOAT // 2:
        raise ValueError(
            f"integer network: weights too large for exact evaluation (|acc| up to 2^{np.log2(bound):.1f})"
        )
    conv = IntegerConv(w_int, b_int, upsample, pad, 0, False, 0, stride)
    return IntegerConvolution(conv, out_bits, bound)


def _conv_out_shape(conv: IntegerConv, shape: tuple[int, ...] | None) -> tuple[int, int, int]:
    if shape is None or len(shape) != 3:
        raise ValueError(f"integer network: a convolution needs (C, H, W) inputs, got {shape}")
    _, h, w = shape
    top, bottom, left, right = conv.pad
    k, s, u = conv.weight.shape[-1], conv.stride, conv.upsample
    return (
        len(conv.weight),
        ((h - 1) * u + 1 + top + bottom - k) // s + 1,
        ((w - 1) * u + 1 + left + right - k) // s + 1,
    )


@dataclass(frozen=True, eq=False)
class IntegerConv:
    """One integer correlation ``out[o] = sum_{i,a,b} weight[o,i,a,b] * x[i, s*y+a, s*x+b] + bias[o]``.

    A transposed convolution is expressed as zero insertion (``upsample``), asymmetric padding ``pad`` =
    (top, bottom, left, right) and a flipped kernel (:func:`conv_geometry`); ``stride`` subsamples. ``__call__``
    rescales the accumulator to the output fixed point (:func:`round_shift` by ``shift``) and clips it to
    ``[0 if relu else -limit, limit]``; :meth:`accumulate` returns the accumulator itself.
    """

    weight: np.ndarray  # (out, in, k, k) integers (int64, or float64 holding integers)
    bias: np.ndarray  # (out,) integers
    upsample: int
    pad: tuple[int, int, int, int]
    shift: int
    relu: bool
    limit: int
    stride: int = 1

    def accumulate(self, x: np.ndarray) -> np.ndarray:
        """``(B, C, h, w)`` -> ``(B, out, h', w')`` accumulator, exact (int64 in: :func:`exact_matmul`; float64 in:
        BLAS, exact by the bound its builder checked)."""
        b, c, h, w = x.shape
        if self.upsample > 1:
            s = self.upsample
            up = np.zeros((b, c, (h - 1) * s + 1, (w - 1) * s + 1), dtype=x.dtype)
            up[:, :, ::s, ::s] = x
            x = up
        top, bottom, left, right = self.pad
        x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
        k = self.weight.shape[-1]
        windows = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, :: self.stride, :: self.stride]
        ho, wo = windows.shape[2], windows.shape[3]
        cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(b * ho * wo, -1)  # im2col
        kernel = self.weight.reshape(self.weight.shape[0], -1).T
        if x.dtype.kind == "f":
            acc = cols @ kernel + self.bias
        else:
            acc = exact_matmul(cols, kernel, self._abs_col_sum) + self.bias
        return acc.reshape(b, ho, wo, -1).transpose(0, 3, 1, 2)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        acc = self.accumulate(x)
        return np.clip(round_shift(acc, self.shift), 0 if self.relu else -self.limit, self.limit)

    @cached_property
    def _abs_col_sum(self) -> int:
        return int(np.abs(self.weight).reshape(self.weight.shape[0], -1).sum(axis=1).max())
