"""Image quality metrics: PSNR and MS-SSIM (Wang, Simoncelli & Bovik 2003), in torch.

.. math::

    \\mathrm{PSNR} = 10 \\log_{10} \\frac{255^2}{\\mathrm{MSE}}, \\qquad
    \\mathrm{MS\\text{-}SSIM} = [l_S\\, c_S s_S]^{w_S} \\prod_{j=1}^{S-1} [c_j s_j]^{w_j},

with an 11-tap Gaussian window (:math:`\\sigma = 1.5`), :math:`K_1 = 0.01`, :math:`K_2 = 0.03`, ``S = 5``
scales (2x2 average pooling between scales, odd sizes edge-padded) and the published weights
``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``. Negative contrast-structure terms are clipped at 0 so the
fractional powers stay real (as in common implementations). Images are uint8 arrays ``(H, W, 3)`` or
``(H, W)``; values are computed per channel and averaged. The smaller side must be at least 161 pixels
for five scales.

Example::

    >>> import numpy as np
    >>> from varinf.compression.evaluation.metrics import ms_ssim, psnr
    >>> x = np.random.default_rng(0).integers(0, 256, (192, 192, 3), dtype=np.uint8)
    >>> round(ms_ssim(x, x), 6), psnr(x, x)
    (1.0, inf)
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import correlate1d

__all__ = ["MS_SSIM_WEIGHTS", "ms_ssim", "psnr", "ssim"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_K1, _K2, _DATA_RANGE = 0.01, 0.03, 255.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images (``inf`` if identical)."""
    a, b = _check(a, b)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(_DATA_RANGE**2 / mse)


def _check(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected (H, W) or (H, W, C) images, got shape {a.shape}")
    return a, b


def _to_tensor(a: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.array(a, dtype=np.float64))
    return (t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None].reshape(-1, 1, *t.shape[:2])).contiguous()


def _window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    return g


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    # separable Gaussian, 'valid' convolution (no padding), as in the reference MS-SSIM implementation;
    # scipy's float64 1-d correlation is ~3x faster than torch's float64 conv2d on CPU (symmetric window)
    r = (len(g) - 1) // 2
    out = correlate1d(x.numpy(), g.numpy(), axis=-1, mode="constant")[..., r:-r]
    out = correlate1d(out, g.numpy(), axis=-2, mode="constant")[..., r:-r, :]
    return torch.from_numpy(np.ascontiguousarray(out))


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image-channel mean SSIM and mean contrast-structure term, each ``(C,)``."""
    c1, c2 = (_K1 * _DATA_RANGE) ** 2, (_K2 * _DATA_RANGE) ** 2
    mx, my = _blur(x, g), _blur(y, g)
    sxx = _blur(x * x, g) - mx**2
    syy = _blur(y * y, g) - my**2
    sxy = _blur(x * y, g) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
    return (lum * cs).flatten(1).mean(1), cs.flatten(1).mean(1)


def _downsample(x: torch.Tensor) -> torch.Tensor:
    """2x2 mean keeping ceil(size / 2) samples: odd sizes are padded by edge replication (as MATLAB's
    reference does with a symmetric boundary), so 161 pixels survive four halvings (161 -> 81 -> 41 -> 21 -> 11)."""
    pad_w, pad_h = x.shape[-1] % 2, x.shape[-2] % 2
    if pad_w or pad_h:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return F.avg_pool2d(x, 2)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Single-scale SSIM (Gaussian window, valid region), averaged over channels."""
    a, b = _check(a, b)
    s, _ = _ssim_terms(_to_tensor(a), _to_tensor(b), _window())
    return float(s.mean())


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Multi-scale SSIM of two uint8 images, in [0, 1] (1 = identical)."""
    a, b = _check(a, b)
    if min(a.shape[:2]) < (11 - 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1) + 1:
        raise ValueError(f"MS-SSIM needs images of at least 161 pixels on each side (got {a.shape[:2]})")
    x, y, g = _to_tensor(a), _to_tensor(b), _window()
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=torch.float64)
    terms = []
    for scale in range(len(MS_SSIM_WEIGHTS)):
        s, cs = _ssim_terms(x, y, g)
        last = scale == len(MS_SSIM_WEIGHTS) - 1
        terms.append(torch.relu(s if last else cs))
        if not last:
            x, y = _downsample(x), _downsample(y)
    values = torch.prod(torch.stack(terms, dim=0) ** weights[:, None], dim=0)  # (C,)
    return float(values.mean())
