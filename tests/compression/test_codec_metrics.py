"""PSNR, SSIM/MS-SSIM and the Bjøntegaard delta against closed forms and a reference implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from varinf.compression import bd_psnr, bd_rate, ms_ssim, psnr, ssim


def _noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).round().astype(np.uint8)


def test_psnr_closed_form():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 12  # MSE = 144 / 48 = 3
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 3.0))


def test_ssim_matches_scikit_image(picture):
    metrics = pytest.importorskip("skimage.metrics")
    b = _noisy(picture, 15)
    ref = metrics.structural_similarity(picture, b, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, data_range=255)  # fmt: skip
    assert ssim(picture, b) == pytest.approx(ref, abs=1e-9)


def test_ms_ssim_properties(picture):
    assert ms_ssim(picture, picture) == pytest.approx(1.0, abs=1e-12)
    b = _noisy(picture, 10)
    assert ms_ssim(picture, b) == pytest.approx(ms_ssim(b, picture), abs=1e-12)  # symmetric
    values = [ms_ssim(picture, _noisy(picture, s)) for s in (2, 8, 32)]
    assert 1 > values[0] > values[1] > values[2] > 0  # monotone in the noise level
    # a global brightness shift hurts only the coarsest luminance term: MS-SSIM stays high, PSNR drops
    shifted = np.clip(picture.astype(int) + 10, 0, 255).astype(np.uint8)
    assert ms_ssim(picture, shifted) > values[1] and psnr(picture, shifted) < psnr(picture, _noisy(picture, 8))
    with pytest.raises(ValueError, match="161"):
        ms_ssim(picture[:100], picture[:100])


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_bd_rate_closed_forms(method):
    rates = np.array([0.1, 0.25, 0.6, 1.3, 2.5])
    psnrs = np.array([26.0, 28.5, 31.7, 34.9, 38.0])
    assert bd_rate(rates, psnrs, 0.7 * rates, psnrs, method) == pytest.approx(-30.0)
    assert bd_rate(rates, psnrs, rates, psnrs, method) == pytest.approx(0.0, abs=1e-12)
    assert bd_psnr(rates, psnrs, rates, psnrs + 1.25, method) == pytest.approx(1.25)
    # exact log-linear curves: rate doubling every 3 dB, curve B shifted by +1 dB => rate ratio 2**(-1/3)
    q = np.linspace(28, 38, 5)
    r = 0.5 * 2 ** ((q - 30) / 3)
    assert bd_rate(r, q, r, q + 1.0, method) == pytest.approx((2 ** (-1 / 3) - 1) * 100)


def test_bd_rate_refuses_disjoint_or_short_curves():
    with pytest.raises(ValueError, match="overlap"):
        bd_rate([1, 2, 3, 4], [20, 21, 22, 23], [1, 2, 3, 4], [30, 31, 32, 33])
    with pytest.raises(ValueError, match="4 points"):
        bd_rate([1, 2, 3], [20, 21, 22], [1, 2, 3], [20, 21, 22])
