"""The synthesis transform re-expressed for fast CPU decoding (same weights, same function up to float rounding).

Profiling a Kodak decode (768x512, one thread) shows the synthesis :math:`g_s` dominating, and within it two
layouts that oneDNN handles badly:

* the 5x5 stride-2 transposed convolutions in NCHW layout run ~2-3x faster on channels-last tensors;
* the inverse GDNs run as one matrix product each on the channels-last rows, square root and product in place;
* the last layer (64 -> 3 channels at full resolution) is slow as a transposed convolution in any layout.
  A stride-2 transposed convolution is the same as four 3x3 correlations of the *input*, one per output
  phase (sub-pixel convolution, Shi et al. 2016, arXiv:1609.05158), interleaved by ``pixel_shuffle``::

      out[2i + a, 2j + b] = sum_{dy, dx in {-1, 0, 1}} W_ab[dy, dx] · in[i + dy, j + dx]

  where ``W_ab`` collects the taps of the flipped 5x5 kernel that land on phase ``(a, b)``.

:func:`decoding_synthesis` builds that module from a codec's ``g_s`` (a snapshot: rebuild after the weights
change). It is used only to decode files; training and the rate estimate use ``g_s`` itself. Decoded pixels
are the same in every run on one machine (one thread, fixed kernels) and within ±1 grey level of ``g_s``.

Shapes: ``(B, M, h, w)`` -> ``(B, 3, 16h, 16w)`` like ``g_s``.

Example::

    >>> import torch
    >>> from varinf.compression.lossy.transforms import synthesis
    >>> from varinf.compression.lossy.fast_synthesis import decoding_synthesis
    >>> g_s = synthesis(8, 12)
    >>> y = torch.randn(1, 12, 2, 3)
    >>> bool(torch.allclose(decoding_synthesis(g_s)(y), g_s(y), atol=1e-5))
    True
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .gdn import GDN

__all__ = ["FusedIGDN", "SubPixelConv", "decoding_synthesis"]


class SubPixelConv(nn.Module):
    """A stride-2, 5x5, padding-2, output-padding-1 ``ConvTranspose2d`` as one 3x3 conv + ``pixel_shuffle``."""

    def __init__(self, deconv: nn.ConvTranspose2d):
        super().__init__()
        if deconv.kernel_size != (5, 5) or deconv.stride != (2, 2) or deconv.padding != (2, 2):
            raise ValueError(f"sub-pixel form needs a 5x5 stride-2 padding-2 transposed convolution (got {deconv})")
        w = deconv.weight.detach()  # (C_in, C_out, 5, 5)
        c_in, c_out = w.shape[:2]
        flipped = w.flip(2, 3).transpose(0, 1)  # correlation kernel on the zero-inserted input, (C_out, C_in, 5, 5)
        phases = torch.zeros(c_out, 2, 2, c_in, 3, 3, dtype=w.dtype)
        for a in range(2):  # output row phase
            for ky in range(a % 2, 5, 2):  # taps that hit a non-inserted input row: (a + ky - 2) even
                dy = (a + ky - 2) // 2
                for b in range(2):
                    for kx in range(b % 2, 5, 2):
                        dx = (b + kx - 2) // 2
                        phases[:, a, b, :, dy + 1, dx + 1] = flipped[:, :, ky, kx]
        # pixel_shuffle reads channel c*4 + 2a + b as phase (a, b) of output channel c
        self.register_buffer("weight", phases.reshape(4 * c_out, c_in, 3, 3))
        bias = deconv.bias.detach() if deconv.bias is not None else torch.zeros(c_out)
        self.register_buffer("bias", bias.repeat_interleave(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(F.conv2d(x, self.weight, self.bias, padding=1), 2)


class FusedIGDN(nn.Module):
    """Inverse GDN on a channels-last tensor as one GEMM with in-place square root and product:
    :math:`x_i \\sqrt{\\beta_i + \\sum_j \\gamma_{ij} x_j^2}` with ``(β, γ)`` fixed at construction."""

    def __init__(self, gdn: GDN):
        super().__init__()
        if not gdn.inverse:
            raise ValueError("FusedIGDN needs an inverse GDN")
        self.register_buffer("beta", gdn.beta_map(gdn.beta).detach().clone())
        self.register_buffer("gamma_t", gdn.gamma_map(gdn.gamma).detach().t().contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        rows = x.permute(0, 2, 3, 1).reshape(-1, c)  # a view when x is channels-last
        out = torch.addmm(self.beta, rows * rows, self.gamma_t)
        out.sqrt_().mul_(rows)
        return out.reshape(b, h, w, c).permute(0, 3, 1, 2)


class _ChannelsLast(nn.Module):
    def __init__(self, body: nn.Sequential):
        super().__init__()
        self.body = body.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.contiguous(memory_format=torch.channels_last))


@torch.no_grad()
def decoding_synthesis(g_s: nn.Sequential) -> nn.Sequential:
    """A decode-only copy of ``g_s``: channels-last body, sub-pixel last layer (see module docstring)."""
    layers = list(copy.deepcopy(g_s).eval())
    last = layers[-1]
    if not isinstance(last, nn.ConvTranspose2d):
        raise ValueError(f"expected a synthesis ending in a transposed convolution (got {last})")
    body = [FusedIGDN(m) if isinstance(m, GDN) and m.inverse else m for m in layers[:-1]]
    return nn.Sequential(_ChannelsLast(nn.Sequential(*body)), SubPixelConv(last)).eval()
