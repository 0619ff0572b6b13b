"""Fixtures for the compression tests: a tiny deterministic codec and a natural test picture (not Kodak)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from varinf.compression import CodecConfig, ImageCodec

TINY = CodecConfig(channels=8, latent_channels=8, hyper_channels=8, lambdas=(0.005, 0.02, 0.08), name="tiny")


def make_tiny_codec(prior: str = "hyperprior", seed: int = 0) -> ImageCodec:
    """A small untrained codec with weights fixed by ``seed`` (scaled so latents span several integers)."""
    torch.manual_seed(seed)
    codec = ImageCodec(CodecConfig(**{**TINY.__dict__, "prior": prior}))
    with torch.no_grad():
        codec.g_a[-1].weight.mul_(20.0)  # untrained latents are tiny; spread them over many symbols
    return codec.eval()


@pytest.fixture(scope="session")
def tiny_codec() -> ImageCodec:
    return make_tiny_codec()


@pytest.fixture(scope="session")
def picture() -> np.ndarray:
    """A 256x256 RGB crop of scikit-image's astronaut (a bundled photograph)."""
    skimage_data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(skimage_data.astronaut()[100:356, 120:376])
