"""The hyper-synthesis in exact integer arithmetic, so that encoder and decoder derive the same scales.

The decoder must choose the *same* table row for every latent as the encoder did, yet the row depends on
:math:`\\sigma = h_s(\\hat z)`, a float network whose last bits vary with thread count, BLAS and CPU. Following
Ballé, Johnston & Minnen (2019, "Integer networks for data compression", arXiv:1810.01285) the trained float
weights are re-expressed in fixed point and the network is evaluated exactly in integers (the layers are the
shared :class:`~varinf.compression.coding.integer_net.IntegerConv`: float64 BLAS where every partial sum provably
stays below 2**53, int64 otherwise):

.. math::

    a_{\\ell} = \\mathrm{clip}\\!\\left(\\Big\\lfloor \\frac{W^{\\mathbb Z}_\\ell * a_{\\ell-1} + b^{\\mathbb Z}_\\ell
        + 2^{s_\\ell - 1}}{2^{s_\\ell}} \\Big\\rfloor, 0, A_{\\max}\\right),
    \\qquad W^{\\mathbb Z} = [W\\, 2^{F_w}],\\ a_\\ell \\approx 2^{F_a} \\cdot \\text{float activation}.

The input :math:`\\hat z` is already an integer; the output is :math:`\\sigma` in fixed point with ``frac_bits``
fractional bits, ready for :meth:`~varinf.compression.lossy.gaussian.ScaleLevels.index`. Worst-case accumulator
magnitudes are checked against :math:`2^{62}` when the network is built, so int64 never overflows.

Shapes: ``(B, C_in, h, w)`` int64 -> ``(B, C_out, 4h, 4w)`` int64 for the default :math:`h_s`.

Example::

    >>> import numpy as np, torch
    >>> from varinf.compression.lossy.transforms import hyper_synthesis
    >>> from varinf.compression.lossy.integer_net import IntegerNetwork
    >>> net = IntegerNetwork.from_sequential(hyper_synthesis(4, 6))
    >>> net(np.zeros((1, 4, 2, 3), dtype=np.int64)).shape
    (1, 6, 8, 12)
"""

from __future__ import annotations

import numpy as np
from torch import nn

from ..coding.integer_net import IntegerConv, conv_geometry

__all__ = ["IntegerConv", "IntegerNetwork"]

WEIGHT_BITS = 16  # F_w: weights are multiples of 2**-16
ACTIVATION_BITS = 12  # F_a: hidden activations and the output scale are multiples of 2**-12
ACTIVATION_MAX = 2**26  # clip (in fixed point): 2**14 = 16384 in float units, far above trained activations
INPUT_MAX = 2**20  # |ẑ| beyond this is not produced by any sane encoder; clipped for the overflow bound


class IntegerNetwork:
    """A chain of :class:`IntegerConv` layers built from a float ``nn.Sequential`` of conv/deconv/ReLU."""

    def __init__(self, layers: list[IntegerConv]):
        self.layers = layers

    @classmethod
    def from_sequential(cls, net: nn.Sequential) -> IntegerNetwork:
        modules = list(net)
        layers: list[IntegerConv] = []
        frac_in, bound_in = 0, INPUT_MAX
        for i, m in enumerate(modules):
            if isinstance(m, nn.ReLU):
                continue
            if not isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                raise ValueError(f"integer network: unsupported layer {m}")
            relu = i + 1 < len(modules) and isinstance(modules[i + 1], nn.ReLU)
            w, b, (up, pad, stride) = conv_geometry(m)
            if stride != 1:
                raise ValueError("integer network: strided convolutions are not needed by h_s")
            w_int = np.round(w * 2.0**WEIGHT_BITS).astype(np.int64)
            b_int = np.round(b * 2.0 ** (WEIGHT_BITS + frac_in)).astype(np.int64)
            worst = int(np.abs(w_int).reshape(w_int.shape[0], -1).sum(axis=1).max()) * bound_in
            if worst + int(np.abs(b_int).max()) + (1 << 40) >= 2**62:
                raise ValueError("integer network: weights too large for exact int64 accumulation")
            shift = WEIGHT_BITS + frac_in - ACTIVATION_BITS
            layers.append(IntegerConv(np.ascontiguousarray(w_int), b_int, up, pad, shift, relu, ACTIVATION_MAX))
            frac_in, bound_in = ACTIVATION_BITS, ACTIVATION_MAX
        return cls(layers)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Integer input ``(B, C, h, w)`` -> fixed-point output with ``ACTIVATION_BITS`` fractional bits."""
        x = np.clip(np.asarray(x, dtype=np.int64), -INPUT_MAX, INPUT_MAX)
        for layer in self.layers:
            x = layer(x)
        return x
