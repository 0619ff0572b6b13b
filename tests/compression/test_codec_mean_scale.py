"""Mean-scale hyperprior: exact latent round trip, integer means and scales, rate estimate vs real bits, warm start."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest
import torch

from varinf.compression import ImageCodec, compress_image, decompress_image, load_codec, save_codec
from varinf.compression.coding.ans import AnsStack
from varinf.compression.lossy.image_file import _to_tensor
from varinf.compression.lossy.integer_net import ACTIVATION_BITS, IntegerConv, IntegerNetwork
from varinf.compression.lossy.warm_starts import mean_scale_from_hyperprior

from .conftest import make_tiny_codec


def _latent(codec, picture, quality=1.0):
    x, _ = _to_tensor(picture, codec.multiple)
    with torch.no_grad():
        return codec.g_a(x) * codec.gains(torch.tensor([quality]))[0]


def test_latents_round_trip_exactly_with_integer_means(picture):
    """pop(push(y)) = [y - μ] + μ with μ from the integer h_s (a multiple of 2**-12), symbol for symbol."""
    codec = make_tiny_codec("mean-scale")
    y = _latent(codec, picture[:64, :128])
    tables = codec.tables()
    stack = AnsStack()
    codec.latent.push(y, stack, tables)
    decoder = AnsStack(stack.words())
    y_hat = codec.latent.pop(decoder, tuple(y.shape), tables)
    assert decoder.is_empty()
    z = torch.round(codec.latent._analysis(y)).to(torch.int64).numpy()
    mean = tables.hyper_synthesis(z)[:, y.shape[1] :] / 2.0**ACTIVATION_BITS
    assert np.abs(mean).max() > 0.05  # the untrained mean head predicts non-zero means
    expected = np.round(y.double().numpy() - mean) + mean
    assert torch.equal(y_hat, torch.from_numpy(expected).float())
    assert len(np.unique(np.round(y_hat.numpy() - mean))) > 3  # more than one symbol


def test_integer_means_track_the_float_hyper_synthesis(picture):
    codec = make_tiny_codec("mean-scale")
    y = _latent(codec, picture[:128, :128])
    z = torch.round(codec.latent._analysis(y))
    with torch.no_grad():
        want = codec.latent.h_s(z).numpy()
    got = codec.tables().hyper_synthesis(z.to(torch.int64).numpy()) / 2.0**ACTIVATION_BITS
    assert np.max(np.abs(got - want)) < 5e-3 * (1 + np.abs(want).max())


def test_file_round_trip_and_identical_decodes(picture):
    codec = make_tiny_codec("mean-scale", seed=4)
    data = compress_image(picture, codec, 1.5).data
    a, b = decompress_image(data, codec), decompress_image(data, codec)
    assert a.shape == picture.shape and np.array_equal(a, b)


def _reference_conv(layer: IntegerConv, x: np.ndarray) -> np.ndarray:
    """The integer correlation with exact Python integers (object arrays): the definition."""
    b, c, h, w = x.shape
    if layer.upsample > 1:
        s = layer.upsample
        up = np.zeros((b, c, (h - 1) * s + 1, (w - 1) * s + 1), dtype=np.int64)
        up[:, :, ::s, ::s] = x
        x = up
    top, bottom, left, right = layer.pad
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))).astype(object)
    k = layer.weight.shape[-1]
    ho, wo = x.shape[2] - k + 1, x.shape[3] - k + 1
    w_obj = layer.weight.astype(object)
    acc = np.zeros((b, layer.weight.shape[0], ho, wo), dtype=object)
    for i in range(k):
        for j in range(k):
            acc += np.einsum("oi,bihw->bohw", w_obj[:, :, i, j], x[:, :, i : i + ho, j : j + wo])
    acc += layer.bias.astype(object)[None, :, None, None]
    out = (acc + (1 << (layer.shift - 1))) // (1 << layer.shift)
    lo = 0 if layer.relu else -(2**26)
    return np.clip(out, lo, 2**26).astype(np.int64)


@pytest.mark.parametrize("magnitude", [30, 2**20, 2**36])
def test_fast_integer_layers_equal_exact_integer_arithmetic(magnitude):
    """Inputs whose accumulations stay below 2**53 take the float64 BLAS path (provably exact), larger ones
    the int64 path: both equal the correlation computed with unbounded Python integers."""
    net = IntegerNetwork.from_sequential(make_tiny_codec("mean-scale").latent.h_s)
    x = np.random.default_rng(5).integers(-magnitude, magnitude + 1, size=(1, 8, 3, 2))
    first = net.layers[0].weight
    l1 = int(np.abs(first).reshape(first.shape[0], -1).sum(axis=1).max())
    assert (l1 * magnitude < 2**53) == (magnitude < 2**36)  # the last case exercises the int64 path
    for layer in net.layers:
        want = _reference_conv(layer, x)
        x = layer(x)
        np.testing.assert_array_equal(x, want)


_DECODE = textwrap.dedent(
    """
    import hashlib, sys, torch
    from varinf.compression import decompress_image, load_codec
    pixels = decompress_image(open(sys.argv[1], "rb").read(), load_codec(sys.argv[2]))
    print(hashlib.sha256(pixels.tobytes()).hexdigest())
    """
)


def test_files_decode_identically_under_other_cpu_kernels(tmp_path, picture):
    """Symbols depend on integers only: a file decodes under ATEN_CPU_CAPABILITY=default and avx2 (other
    float kernels) without error, to pixels within one grey level of this process's (float synthesis)."""
    codec = make_tiny_codec("mean-scale", seed=6)
    save_codec(codec, tmp_path / "model")
    data = compress_image(picture, codec, 2.0).data
    (tmp_path / "img.vif").write_bytes(data)
    here = decompress_image(data, codec)
    for capability in ("default", "avx2"):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": capability}
        args = [
            sys.executable,
            "-c",
            _DECODE.replace("print(hashlib", "import numpy; numpy.save(sys.argv[3], pixels); print(hashlib"),
        ]
        out = subprocess.run([*args, str(tmp_path / "img.vif"), str(tmp_path / "model"), str(tmp_path / "px.npy")],
                             capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
        assert out.returncode == 0, out.stderr
        there = np.load(tmp_path / "px.npy")
        assert np.abs(there.astype(int) - here.astype(int)).max() <= 1
        assert out.stdout.strip() == hashlib.sha256(there.tobytes()).hexdigest()


def test_warm_start_computes_the_same_function(picture):
    old = make_tiny_codec("hyperprior", seed=8)
    new = mean_scale_from_hyperprior(old).eval()
    x, _ = _to_tensor(picture, 64)
    with torch.no_grad():
        a, b = old(x, torch.tensor([2.0])), new(x, torch.tensor([2.0]))
    assert torch.equal(a.x_hat, b.x_hat) and torch.equal(a.bits, b.bits)
    assert compress_image(picture, old, 1.0).payload_bits == compress_image(picture, new, 1.0).payload_bits
    with pytest.raises(ValueError, match="scale-hyperprior"):
        mean_scale_from_hyperprior(new)


def _shipped_mean_scale():
    """The shipped codec's mean-scale part: the shipped model itself, or a checkerboard model without its context
    (same transforms, hyperprior and z prior)."""
    codec = load_codec()
    if codec.config.prior == "mean-scale":
        return codec
    out = ImageCodec(replace(codec.config, prior="mean-scale", extra={}))
    out.load_state_dict({k: v for k, v in codec.state_dict().items() if k in out.state_dict()})
    return out.eval()


def _random_means(codec):
    """A mean-scale model with ``codec``'s trained transforms and a random small mean head."""
    if codec.config.prior == "hyperprior":
        codec = mean_scale_from_hyperprior(codec).eval()
    torch.manual_seed(7)
    with torch.no_grad():
        head, m = codec.latent.h_s[-1], codec.config.latent_channels
        head.weight[m:] = torch.randn_like(head.weight[m:]) * 0.02
        head.bias[m:] = torch.randn(m) * 0.5
    return codec


@pytest.mark.parametrize("means", ["shipped", "random"])
@pytest.mark.parametrize("quality", [0.0, 5.0])
def test_real_bits_match_estimated_bits_with_means(quality, means):
    """On a 512x512 photograph, payload bits / -log2 p(ŷ, ẑ) lies in [0.99, 1.01] for the shipped codec and
    for its transforms with a random mean head (large non-zero means): the integer means and snapped scales
    cost next to nothing. Header: 39 bytes on top."""
    skimage_data = pytest.importorskip("skimage.data")
    codec = _shipped_mean_scale() if means == "shipped" else _random_means(_shipped_mean_scale())
    img = skimage_data.astronaut()
    result = compress_image(img, codec, quality)
    ratio = result.payload_bits / result.estimated_bits
    assert 0.99 <= ratio <= 1.01, ratio
    assert result.file_bits / result.estimated_bits <= 1.01 + 8 * 39 / result.estimated_bits
    if means == "random":  # the test exercises means that move symbols
        y = _latent(codec, img, quality)
        z = torch.round(codec.latent._analysis(y)).long().numpy()
        assert np.abs(codec.latent._entropy_parameters(z, codec.tables())[1]).max() > 0.5
