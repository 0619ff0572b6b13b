"""Convolutional transforms of Ballé et al. (2017, arXiv:1611.01704; 2018, arXiv:1802.01436).

Shapes (``N`` hidden channels, ``M`` latent channels, ``N_h`` hyper-latent channels)::

    analysis          x (B, 3, H, W)          -> y (B, M, H/16, W/16)    4 x [conv 5x5 /2], GDN between
    synthesis         y (B, M, H/16, W/16)    -> x̂ (B, 3, H, W)          4 x [deconv 5x5 *2], IGDN between
    hyper_analysis    |y| (B, M, H/16, W/16)  -> z (B, N_h, H/64, W/64)  conv 3x3, ReLU, 2 x [conv 5x5 /2]
    hyper_synthesis   ẑ (B, N_h, H/64, W/64)  -> σ (B, M, H/16, W/16)    2 x [deconv 5x5 *2], ReLU, conv 3x3, ReLU

so an image of size ``H x W`` must be padded to multiples of :data:`FACTORIZED_MULTIPLE` (16) or
:data:`HYPERPRIOR_MULTIPLE` (64). The hyper-synthesis ends in a ReLU because it predicts scales; its weights
are the ones re-expressed in exact integer arithmetic at coding time (:mod:`varinf.compression.lossy.integer_net`).

Example::

    >>> import torch
    >>> from varinf.compression.lossy.transforms import analysis, synthesis
    >>> y = analysis(8, 12)(torch.rand(1, 3, 32, 48))
    >>> tuple(y.shape), tuple(synthesis(8, 12)(y).shape)
    ((1, 12, 2, 3), (1, 3, 32, 48))
"""

from __future__ import annotations

from torch import nn

from .gdn import GDN

__all__ = [
    "FACTORIZED_MULTIPLE",
    "HYPERPRIOR_MULTIPLE",
    "analysis",
    "hyper_analysis",
    "hyper_synthesis",
    "synthesis",
]

FACTORIZED_MULTIPLE = 16
HYPERPRIOR_MULTIPLE = 64


def _conv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def _deconv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=stride, padding=k // 2, output_padding=stride - 1)


def analysis(n: int, m: int) -> nn.Sequential:
    """:math:`g_a`: image in [0, 1] to latent :math:`y` (downsampling by 16)."""
    return nn.Sequential(
        _conv(3, n), GDN(n), _conv(n, n), GDN(n), _conv(n, n), GDN(n), _conv(n, m)
    )  # fmt: skip


def synthesis(n: int, m: int) -> nn.Sequential:
    """:math:`g_s`: latent to image (upsampling by 16)."""
    return nn.Sequential(
        _deconv(m, n), GDN(n, inverse=True), _deconv(n, n), GDN(n, inverse=True),
        _deconv(n, n), GDN(n, inverse=True), _deconv(n, 3),
    )  # fmt: skip


def hyper_analysis(n: int, m: int) -> nn.Sequential:
    """:math:`h_a`: :math:`|y|` to hyper-latent :math:`z` (downsampling by 4)."""
    return nn.Sequential(_conv(m, n, 3, 1), nn.ReLU(), _conv(n, n), nn.ReLU(), _conv(n, n))


def hyper_synthesis(n: int, m: int) -> nn.Sequential:
    """:math:`h_s`: :math:`\\hat z` to the scales :math:`\\sigma \\ge 0` of :math:`y` (upsampling by 4)."""
    return nn.Sequential(_deconv(n, n), nn.ReLU(), _deconv(n, n), nn.ReLU(), _conv(n, m, 3, 1), nn.ReLU())
