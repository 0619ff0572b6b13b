"""Real file size vs the model's estimated rate, with the shipped pretrained codec."""

from __future__ import annotations

import numpy as np
import pytest

from varinf.compression import compress_image, decompress_image, load_codec, psnr


@pytest.fixture(scope="module")
def shipped():
    return load_codec()


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
def test_real_bits_match_estimated_bits(shipped, fraction):
    """On a 512x512 photograph (astronaut), payload bits / (-log2 p(ŷ, ẑ)) lies in [0.99, 1.01].

    The estimate is the model's own likelihood of the rounded latents (float network, exact Gaussian);
    the payload uses the integer hyper-synthesis, 256 snapped scales and 24-bit tables, so the ratio
    measures every approximation of the coding path. The 39-byte header is reported separately.
    """
    skimage_data = pytest.importorskip("skimage.data")
    img = skimage_data.astronaut()
    result = compress_image(img, shipped, fraction * shipped.max_quality)
    ratio = result.payload_bits / result.estimated_bits
    assert result.estimated_bits > 30_000  # large enough that the final ANS word is negligible (< 0.1%)
    assert 0.99 <= ratio <= 1.01, ratio
    assert result.file_bits - result.payload_bits == 8 * 39  # header + meta + length + CRC
    assert (result.file_bits / result.estimated_bits) <= 1.01 + 8 * 39 / result.estimated_bits


def test_shipped_codec_reconstructs_a_photograph(shipped):
    skimage_data = pytest.importorskip("skimage.data")
    img = np.ascontiguousarray(skimage_data.coffee()[:256, :256])
    low, high = (compress_image(img, shipped, q) for q in (0.0, shipped.max_quality))
    p_low = psnr(img, decompress_image(low.data, shipped))
    p_high = psnr(img, decompress_image(high.data, shipped))
    assert low.bpp < high.bpp and p_low < p_high
