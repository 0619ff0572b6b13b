"""Checkerboard context: exact two-pass latent round trip, integer context vs float context, warm start that computes
the same function, gains of new quality levels, rate estimate vs real bits, portable decoding."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from varinf.compression import FormatError, compress_image, decompress_image, save_codec
from varinf.compression.coding.ans import AnsStack
from varinf.compression.lossy.checkerboard import CONTEXT_TAPS, anchor_mask, gather_taps
from varinf.compression.lossy.image_file import _to_tensor
from varinf.compression.lossy.integer_net import ACTIVATION_BITS
from varinf.compression.lossy.warm_starts import checkerboard_from_mean_scale

from .conftest import make_tiny_codec


def _tiny_checkerboard(seed: int = 0, lambdas=None):
    """A tiny checkerboard codec made from a tiny mean-scale one, with a random (non-zero) context."""
    codec = checkerboard_from_mean_scale(make_tiny_codec("mean-scale", seed), lambdas).eval()
    torch.manual_seed(seed + 100)
    with torch.no_grad():
        last = codec.latent.entropy_parameters[-1]
        last.weight.copy_(torch.randn_like(last.weight) * 0.05)
        last.bias.copy_(torch.randn_like(last.bias) * 0.3)
    return codec


def _latent(codec, picture, quality=1.0):
    x, _ = _to_tensor(picture, codec.multiple)
    with torch.no_grad():
        return codec.g_a(x) * codec.gains(torch.tensor([quality]))[0]


def test_context_taps_are_the_anchors_around_a_non_anchor():
    assert len(CONTEXT_TAPS) == 12 and all((di + dj) % 2 for di, dj in CONTEXT_TAPS)
    mask = anchor_mask(4, 5)
    assert mask[0, 0] and not mask[0, 1] and mask[1, 1] and mask.sum() == 10


def test_latents_round_trip_exactly_in_two_passes(picture):
    """pop(push(y)): anchors are [y - μ_h] + μ_h from the integer h_s alone, the other positions [y - μ] + μ with μ
    from the integer context of the decoded anchors; symbol for symbol, and the stack ends empty."""
    codec = _tiny_checkerboard()
    y = _latent(codec, picture[:128, :192])
    tables = codec.tables()
    stack = AnsStack()
    codec.latent.push(y, stack, tables)
    decoder = AnsStack(stack.words())
    y_hat = codec.latent.pop(decoder, tuple(y.shape), tables)
    assert decoder.is_empty()
    z = torch.round(codec.latent._analysis(y)).to(torch.int64).numpy()
    hyper = tables.hyper_synthesis(z)
    m, anchors = y.shape[1], anchor_mask(*y.shape[-2:])
    mean_h = hyper[:, m:] / 2.0**ACTIVATION_BITS
    want = np.round(y.double().numpy() - mean_h) + mean_h
    np.testing.assert_array_equal(y_hat.numpy()[:, :, anchors], want[:, :, anchors].astype(np.float32))
    # the other positions differ from the hyperprior-only prediction: the context moved their means
    mean = y_hat.numpy() - np.round(y.double().numpy() - mean_h)
    assert np.abs(mean[:, :, ~anchors] - mean_h[:, :, ~anchors]).max() > 0.05


def test_integer_context_tracks_the_float_context(picture):
    """The integer [σ, μ] at non-anchors equals the float network's within fixed-point rounding."""
    codec = _tiny_checkerboard(seed=2)
    y = _latent(codec, picture[:128, :128])
    tables, latent = codec.tables(), codec.latent
    z = torch.round(latent._analysis(y))
    hyper_fp = tables.hyper_synthesis(z.to(torch.int64).numpy())
    m, anchors = y.shape[1], anchor_mask(*y.shape[-2:])
    y_fp = np.zeros(y.shape, dtype=np.int64)
    mean_fp = hyper_fp[:, m:]
    y_fp[:, :, anchors] = ((np.round(y.double().numpy() - mean_fp / 4096.0) * 4096).astype(np.int64) + mean_fp)[
        :, :, anchors
    ]
    got = tables.context(y_fp, hyper_fp, ~anchors) / 4096.0
    with torch.no_grad():
        hyper = torch.from_numpy(hyper_fp / 4096.0).float()
        ctx = torch.nn.functional.conv2d(torch.from_numpy(y_fp / 4096.0).float(),
                                         latent.context.weight * latent.tap_mask, latent.context.bias, padding=2)  # fmt: skip
        want = (hyper + latent.entropy_parameters(torch.cat([hyper, ctx], 1))).numpy()[:, :, ~anchors]
    assert np.max(np.abs(got - want)) < 2e-3 * (1 + np.abs(want).max())


def test_gathered_taps_are_the_masked_correlation():
    """gather_taps + the tap-major weights equal a 5x5 correlation whose off-anchor taps are zero (exact integers)."""
    rng = np.random.default_rng(1)
    y = rng.integers(-50, 50, size=(2, 3, 6, 7))
    where = ~anchor_mask(6, 7)
    w = rng.integers(-5, 5, size=(4, 3, 5, 5))
    cols = gather_taps(y * anchor_mask(6, 7), *np.nonzero(where))  # (B P, 12 M)
    taps = np.stack([w[:, :, di + 2, dj + 2] for di, dj in CONTEXT_TAPS])  # (12, out, M)
    got = cols @ taps.transpose(0, 2, 1).reshape(-1, 4)
    padded = np.pad(y * anchor_mask(6, 7), ((0, 0), (0, 0), (2, 2), (2, 2)))
    ii, jj = np.nonzero(where)
    want = np.stack([np.einsum("oiab,iab->o", w, padded[b, :, i : i + 5, j : j + 5])
                     for b in range(2) for i, j in zip(ii, jj)])  # fmt: skip
    np.testing.assert_array_equal(got, want)


def test_warm_start_computes_the_same_function_with_new_levels(picture):
    old = make_tiny_codec("mean-scale", seed=3)
    lambdas = (0.002, 0.005, 0.0125, 0.02, 0.08, 0.3)  # two new levels inside, one below and one above
    new = checkerboard_from_mean_scale(old, lambdas).eval()
    x, _ = _to_tensor(picture, 64)
    for q_old, q_new in [(0.0, 1.0), (1.0, 3.0), (2.0, 4.0)]:
        with torch.no_grad():
            a, b = old(x, torch.tensor([q_old])), new(x, torch.tensor([q_new]))
        assert torch.equal(a.x_hat, b.x_hat) and torch.allclose(a.bits, b.bits, rtol=1e-6)
        ra, rb = compress_image(picture, old, q_old), compress_image(picture, new, q_new)
        assert abs(ra.payload_bits - rb.payload_bits) <= 64  # same symbols and rows, other order on the stack
        assert np.array_equal(decompress_image(ra.data, old), decompress_image(rb.data, new))
    g = new.gains.log_gain.detach()
    g_old = old.gains.log_gain.detach()
    t = (np.log(0.0125) - np.log(0.005)) / (np.log(0.02) - np.log(0.005))
    torch.testing.assert_close(g[2], g_old[0] + t * (g_old[1] - g_old[0]))  # interpolated in log lambda
    assert torch.all(g[5] > g[4]) and torch.all(g[0] < g[1])  # extrapolated: finer above, coarser below
    with pytest.raises(ValueError, match="mean-scale"):
        checkerboard_from_mean_scale(new)


def test_file_round_trip_refuses_other_models_and_tracks_estimated_bits(picture):
    codec = _tiny_checkerboard(seed=4)
    result = compress_image(picture, codec, 1.5)
    a, b = decompress_image(result.data, codec), decompress_image(result.data, codec)
    assert a.shape == picture.shape and np.array_equal(a, b)
    assert 0.98 <= result.payload_bits / result.estimated_bits <= 1.02
    with pytest.raises(FormatError, match="written with model"):
        decompress_image(result.data, _tiny_checkerboard(seed=5))


def test_files_decode_to_the_same_bytes_and_pixels_in_fresh_processes(tmp_path, picture):
    """Encode and decode in fresh processes under ATEN_CPU_CAPABILITY=default and avx2 and with 2 threads: every
    process writes the same file bytes and decodes it to the same pixels."""
    codec = _tiny_checkerboard(seed=6)
    save_codec(codec, tmp_path / "model")
    np.save(tmp_path / "img.npy", picture)
    script = (
        "import hashlib, sys, numpy, torch\n"
        "from varinf.compression import compress_image, decompress_image, load_codec\n"
        "codec = load_codec(sys.argv[2]); data = compress_image(numpy.load(sys.argv[1]), codec, 1.25).data\n"
        "print(hashlib.sha256(data).hexdigest(), hashlib.sha256(decompress_image(data, codec).tobytes()).hexdigest())\n"
    )
    seen = set()
    for capability, threads in (("default", "1"), ("avx2", "1"), (None, "2")):
        env = {**os.environ, "OMP_NUM_THREADS": threads}
        env.pop("ATEN_CPU_CAPABILITY", None)
        if capability:
            env["ATEN_CPU_CAPABILITY"] = capability
        out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "img.npy"), str(tmp_path / "model")],
                             capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
        assert out.returncode == 0, out.stderr
        seen.add(out.stdout.strip())
    assert len(seen) == 1, seen
