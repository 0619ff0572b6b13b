"""Lossless ``.vif`` files: arrays come back identical (values, shape, dtype); corrupt files give FormatError."""

from __future__ import annotations

import struct
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from varinf.cli.main import main
from varinf.compression import (
    BitsBackCodec,
    FormatError,
    compress_lossless,
    decompress_lossless,
    load_bitsback,
)
from varinf.vae import VAE, VAEConfig


@pytest.fixture(scope="module")
def codec() -> BitsBackCodec:
    torch.manual_seed(0)
    vae = VAE.from_config(VAEConfig(data_shape=(1, 6, 6), latents=(4,), hidden=((16,),))).eval()
    return BitsBackCodec(vae, latent_bits=8, initial_words=8)


def digits(shape, seed=0, dtype=np.uint8, scale=1):
    return ((np.random.default_rng(seed).random(shape) < 0.3) * scale).astype(dtype)


@pytest.mark.parametrize(
    ("shape", "dtype", "scale"),
    [((6, 6), np.uint8, 1), ((7, 6, 6), np.uint8, 255), ((3, 1, 6, 6), np.int64, 1), ((4, 6, 6), bool, 1)],
)
def test_arrays_round_trip_exactly(codec, shape, dtype, scale):
    x = digits(shape, dtype=dtype, scale=scale)
    back = decompress_lossless(compress_lossless(x, codec).data, codec)
    assert back.shape == x.shape and back.dtype == x.dtype
    np.testing.assert_array_equal(back, x)


def test_bad_arrays_are_refused(codec):
    with pytest.raises(ValueError, match="binary"):
        compress_lossless(np.full((2, 6, 6), 7, np.uint8), codec)
    with pytest.raises(ValueError, match="shape"):
        compress_lossless(np.zeros((2, 5, 6), np.uint8), codec)
    with pytest.raises(ValueError, match="dtype"):
        compress_lossless(np.zeros((2, 6, 6), np.float32), codec)


def test_corrupt_truncated_and_foreign_files_raise_format_error(codec):
    """Every mutation is caught: header/payload bit flips (CRC), truncations, and payload changes with a
    *recomputed* CRC (caught by the decoder: it must end on the seed and the data must match their CRC)."""
    data = compress_lossless(digits((12, 6, 6), seed=3), codec).data
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for trial in range(300):
        bad = bytearray(data)
        kind = trial % 3
        if kind == 0:
            bad = bad[: rng.integers(0, len(data))]
        else:
            pos = rng.integers(0 if kind == 1 else len(data) - 4 - 4 * 3, len(data) - 4)
            bad[pos] ^= 1 << int(rng.integers(0, 8))
            if kind == 2:  # forge the checksum so the decoder itself must notice
                struct.pack_into("<I", bad, len(bad) - 4, zlib.crc32(bytes(bad[:-4])))
        if bytes(bad) == data:
            continue
        with pytest.raises(FormatError):
            decompress_lossless(bytes(bad), codec)
    assert time.perf_counter() - start < 30
    other = BitsBackCodec(codec.vae, latent_bits=6, initial_words=8)
    with pytest.raises(FormatError, match="model"):
        decompress_lossless(data, other)


def test_a_lossy_file_is_not_decoded_as_lossless(codec, tiny_codec):
    from varinf.compression import compress_image

    lossy = compress_image(np.zeros((16, 16, 3), np.uint8), tiny_codec, 0).data
    with pytest.raises(FormatError, match="lossy"):
        decompress_lossless(lossy, codec)


def test_cli_lossless_round_trip_with_the_shipped_model(tmp_path, capsys):
    x = digits((3, 28, 28), scale=255)
    np.save(tmp_path / "d.npy", x)
    Image.fromarray(x[0]).save(tmp_path / "d.png")
    assert main(["compress", "--lossless", str(tmp_path / "d.npy"), "-o", str(tmp_path / "d.vif")]) == 0
    assert "bits/dim" in capsys.readouterr().out
    assert main(["decompress", str(tmp_path / "d.vif"), "-o", str(tmp_path / "back.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "back.npy"), x)
    assert main(["compress", "--lossless", str(tmp_path / "d.png"), "-o", str(tmp_path / "p.vif")]) == 0
    assert main(["decompress", str(tmp_path / "p.vif"), "-o", str(tmp_path / "back.png")]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "back.png")), x[0])
    # refusals: an image file holds one image; existing outputs are kept
    assert main(["decompress", str(tmp_path / "d.vif"), "-o", str(tmp_path / "many.png")]) == 1
    assert main(["compress", "--lossless", str(tmp_path / "d.npy"), "-o", str(tmp_path / "d.vif")]) == 1
    err = capsys.readouterr().err
    assert "one image" in err and "--force" in err and "Traceback" not in err
    assert not (tmp_path / "many.png").exists()


def test_shipped_model_is_small_and_checked():
    codec = load_bitsback()
    assert codec.data_shape == (1, 28, 28) and codec.symbols == 2
    from varinf.compression.lossless.bitsback_model import DEFAULT_BITSBACK_DIR

    assert (DEFAULT_BITSBACK_DIR / "model.safetensors").stat().st_size < 1_100_000


def test_eight_bit_vae_run_folder_codes_files(tmp_path):
    """A varinf VAE run folder (no model.json) is a bits-back model too; 8-bit values round trip."""
    from varinf.compression import compress_lossless_file, decompress_lossless_file
    from varinf.vae import save_vae

    torch.manual_seed(0)
    save_vae(tmp_path / "run", VAE.from_config(VAEConfig(data_shape=(1, 5, 5), latents=(3,), hidden=((8,),),
                                                         likelihood="logistic")))  # fmt: skip
    x = np.random.default_rng(2).integers(0, 256, (4, 5, 5)).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    compress_lossless_file(tmp_path / "x.npy", tmp_path / "x.vif", model=tmp_path / "run")
    back = decompress_lossless_file(tmp_path / "x.vif", tmp_path / "y.npy", model=tmp_path / "run")
    np.testing.assert_array_equal(back, x)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), x)
