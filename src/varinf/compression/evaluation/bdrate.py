"""Bjøntegaard delta rate and PSNR: the average gap between two rate-distortion curves.

For curves :math:`(R_i, D_i)` (rate in bpp, quality e.g. PSNR in dB) of an anchor :math:`A` and a test
codec :math:`B`, interpolate :math:`\\log R` as a function of :math:`D` and average over the overlapping
quality range :math:`[D_{lo}, D_{hi}]`:

.. math::

    \\Delta_R = \\exp\\!\\left(\\frac{1}{D_{hi} - D_{lo}} \\int_{D_{lo}}^{D_{hi}}
        \\big(\\log R_B(D) - \\log R_A(D)\\big)\\, dD\\right) - 1,

reported in percent (negative = B needs fewer bits for the same quality). Interpolation is piecewise cubic
Hermite (``"pchip"``, the monotone variant used by current JVET/CompressAI tooling) or the original cubic
polynomial fit (``"cubic"``, VCEG-M33, Bjøntegaard 2001). BD-PSNR swaps the roles of rate and quality.

Example::

    >>> from varinf.compression.evaluation.bdrate import bd_rate
    >>> rates, psnrs = [0.25, 0.5, 1.0, 2.0], [28.0, 31.0, 34.0, 37.0]
    >>> round(bd_rate(rates, psnrs, [0.8 * r for r in rates], psnrs), 6)
    -20.0
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator

__all__ = ["bd_psnr", "bd_rate"]


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> float:
    order = np.argsort(x)
    x, y = x[order], y[order]
    if method == "pchip":
        return float(PchipInterpolator(x, y).integrate(lo, hi))
    if method == "cubic":
        poly = np.polyint(np.polyfit(x, y, 3))
        return float(np.polyval(poly, hi) - np.polyval(poly, lo))
    raise ValueError(f"method must be 'pchip' or 'cubic' (got {method!r})")


def _prepare(rate, quality, name: str) -> tuple[np.ndarray, np.ndarray]:
    rate, quality = np.asarray(rate, dtype=np.float64), np.asarray(quality, dtype=np.float64)
    if rate.shape != quality.shape or rate.ndim != 1 or rate.size < 4:
        raise ValueError(f"{name}: need matching 1-d rate/quality arrays with at least 4 points")
    if np.any(rate <= 0) or not np.all(np.isfinite(quality)):
        raise ValueError(f"{name}: rates must be positive and qualities finite")
    if np.unique(quality).size != quality.size or np.unique(rate).size != rate.size:
        raise ValueError(f"{name}: rates and qualities must be distinct (monotone RD curve)")
    return np.log(rate), quality


def bd_rate(rate_a, quality_a, rate_b, quality_b, method: str = "pchip") -> float:
    """Average rate difference of B vs anchor A at equal quality, in percent."""
    la, qa = _prepare(rate_a, quality_a, "anchor")
    lb, qb = _prepare(rate_b, quality_b, "test")
    lo, hi = max(qa.min(), qb.min()), min(qa.max(), qb.max())
    if hi <= lo:
        raise ValueError(f"the quality ranges do not overlap ([{qa.min():.2f}, {qa.max():.2f}] vs "
                         f"[{qb.min():.2f}, {qb.max():.2f}])")  # fmt: skip
    diff = (_integral(qb, lb, lo, hi, method) - _integral(qa, la, lo, hi, method)) / (hi - lo)
    return float((np.exp(diff) - 1.0) * 100.0)


def bd_psnr(rate_a, quality_a, rate_b, quality_b, method: str = "pchip") -> float:
    """Average quality difference of B vs anchor A at equal rate (e.g. dB)."""
    la, qa = _prepare(rate_a, quality_a, "anchor")
    lb, qb = _prepare(rate_b, quality_b, "test")
    lo, hi = max(la.min(), lb.min()), min(la.max(), lb.max())
    if hi <= lo:
        raise ValueError("the rate ranges do not overlap")
    return float((_integral(lb, qb, lo, hi, method) - _integral(la, qa, lo, hi, method)) / (hi - lo))
