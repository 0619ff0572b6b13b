"""Lossy image files: exact latent round trip, any image size, grey images, errors, process-independent decoding."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from varinf.compression import FormatError, compress_image, decompress_image, save_codec
from varinf.compression.coding.ans import AnsStack, CodingError
from varinf.compression.lossy.image_file import _to_tensor
from varinf.utils import num_threads

from .conftest import make_tiny_codec


@pytest.mark.parametrize("prior", ["hyperprior", "factorized"])
def test_latents_round_trip_exactly(prior, picture):
    codec = make_tiny_codec(prior)
    x, _ = _to_tensor(picture[:64, :128], codec.multiple)
    with torch.no_grad():
        y = codec.g_a(x) * codec.gains(torch.tensor([1.0]))[0]
    tables = codec.tables()
    stack = AnsStack()
    codec.latent.push(y, stack, tables)
    decoder = AnsStack(stack.words())
    y_hat = codec.latent.pop(decoder, tuple(y.shape), tables)
    assert torch.equal(y_hat, torch.round(y)) and decoder.is_empty()
    assert len(np.unique(y_hat)) > 3  # the test exercises more than one symbol


@pytest.mark.parametrize("prior", ["hyperprior", "factorized"])
def test_codec_decompress_inverts_compress_to_the_rounded_forward_pass(prior, picture):
    """ImageCodec.compress/decompress (the coding dataflow, no file): x̂ is the eval-mode forward pass (up to
    float rounding: decoding runs the fused decode-only synthesis, which sums in another order)."""
    codec = make_tiny_codec(prior)
    x, _ = _to_tensor(picture[:64, :128], codec.multiple)
    streams = codec.compress(x, 1.5)
    x_hat = codec.decompress(streams.words, streams.size, 1.5)
    with torch.no_grad(), num_threads(1):
        out = codec(x, torch.tensor([1.5]))
    assert streams.size == (64, 128)
    torch.testing.assert_close(x_hat, out.x_hat, atol=1e-4, rtol=0)
    assert streams.estimated_bits == pytest.approx(float(out.bits.sum()))
    with pytest.raises(CodingError, match="left over"):  # an extra word at the bottom of the stack
        codec.decompress(np.insert(streams.words, 0, np.uint32(12345)), streams.size, 1.5)


@pytest.mark.parametrize("shape", [(1, 1), (17, 5), (64, 64), (65, 130), (100, 37, 3)])
def test_any_image_size_decodes_to_the_same_size(tiny_codec, shape):
    img = np.random.default_rng(0).integers(0, 256, shape if len(shape) == 3 else (*shape, 3), dtype=np.uint8)
    out = decompress_image(compress_image(img, tiny_codec, 0.5).data, tiny_codec)
    assert out.shape == img.shape and out.dtype == np.uint8


def test_grey_images_stay_grey(tiny_codec, picture):
    grey = picture[:40, :50, 1].copy()
    out = decompress_image(compress_image(grey, tiny_codec, 1.0).data, tiny_codec)
    assert out.shape == grey.shape


def test_decoded_pixels_equal_the_forward_pass(tiny_codec, picture):
    """The file decodes to exactly what the model's rounded forward pass reconstructs."""
    img = picture[:64, :64]
    out = decompress_image(compress_image(img, tiny_codec, 2.0).data, tiny_codec)
    x, _ = _to_tensor(img, tiny_codec.multiple)
    with torch.no_grad(), num_threads(1):
        x_hat = tiny_codec(x, torch.tensor([2.0])).x_hat[0]
    expected = torch.round(x_hat.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(out, expected)


def test_quality_changes_rate_monotonically(tiny_codec, picture):
    sizes = [len(compress_image(picture, tiny_codec, q).data) for q in (0.0, 1.0, 2.0)]
    assert sizes[0] < sizes[1] < sizes[2]


def test_bad_inputs_raise_value_errors(tiny_codec):
    with pytest.raises(ValueError, match="quality"):
        compress_image(np.zeros((8, 8, 3), np.uint8), tiny_codec, 7.0)
    with pytest.raises(ValueError, match="uint8"):
        compress_image(np.zeros((8, 8, 3), np.float32), tiny_codec, 1.0)
    with pytest.raises(ValueError, match="RGB"):
        compress_image(np.zeros((8, 8, 4), np.uint8), tiny_codec, 1.0)


def test_file_from_another_model_is_refused(tiny_codec, picture):
    data = compress_image(picture[:32, :32], tiny_codec, 1.0).data
    with pytest.raises(FormatError, match="written with model"):
        decompress_image(data, make_tiny_codec(seed=1))


_DECODE = textwrap.dedent(
    """
    import hashlib, sys, torch
    torch.set_num_threads(int(sys.argv[3]))
    from varinf.compression import decompress_image, load_codec
    pixels = decompress_image(open(sys.argv[1], "rb").read(), load_codec(sys.argv[2]))
    print(hashlib.sha256(pixels.tobytes()).hexdigest())
    """
)


def test_decoding_is_bit_identical_across_processes(tmp_path, picture):
    codec = make_tiny_codec(seed=3)
    save_codec(codec, tmp_path / "model")
    data = compress_image(picture, codec, 1.5).data
    (tmp_path / "img.vif").write_bytes(data)
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    args = [str(tmp_path / "img.vif"), str(tmp_path / "model")]
    # two fresh interpreters at once, with different thread settings
    procs = [
        subprocess.Popen([sys.executable, "-c", _DECODE, *args, t], stdout=subprocess.PIPE, text=True, env=env)
        for t in ("1", "2")
    ]
    digests = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    here = hashlib.sha256(decompress_image(data, codec).tobytes()).hexdigest()
    assert digests == {here}
