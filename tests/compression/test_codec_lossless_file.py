"""Lossless ``.vif`` files: arrays come back identical (values, shape, dtype); corrupt files give FormatError."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from varinf.cli.main import main
from varinf.compression import (
    BitsBackCodec,
    Container,
    FormatError,
    compress_lossless,
    decompress_lossless,
    load_bitsback,
    read_container,
)
from varinf.compression.lossless import lossless_file
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


def _rewrap(data: bytes, meta=None, payload=None, model_id=None) -> bytes:
    """The file with other meta / payload / model id and a *valid* container CRC (only the decoder can object)."""
    c = read_container(data)
    return Container(c.kind, model_id or c.model_id, c.table_digest, c.meta if meta is None else meta,
                     c.payload if payload is None else payload).to_bytes()  # fmt: skip


def test_old_and_foreign_files_are_refused_by_name(codec):
    data = compress_lossless(digits((5, 6, 6)), codec).data
    meta = bytearray(read_container(data).meta)
    with pytest.raises(FormatError, match="format 1"):  # the float-network format: 23 bytes of meta
        decompress_lossless(_rewrap(data, meta=bytes(23)), codec)
    with pytest.raises(FormatError, match="unsupported lossless format 3"):
        decompress_lossless(_rewrap(data, meta=bytes([3]) + bytes(meta[1:])), codec)
    with pytest.raises(FormatError, match="integer-network version 9"):
        decompress_lossless(_rewrap(data, meta=bytes(meta[:1]) + bytes([9]) + bytes(meta[2:])), codec)
    named = BitsBackCodec(codec.vae, latent_bits=8, initial_words=8, name="digits-v1")
    foreign = compress_lossless(digits((5, 6, 6)), named).data
    other = BitsBackCodec(codec.vae, latent_bits=7, initial_words=8, name="mine")
    with pytest.raises(
        FormatError, match=f"needs bits-back model 'digits-v1' \\(id {named.model_id().hex()}\\).*'mine'"
    ):
        decompress_lossless(foreign, other)


def test_decoding_is_bounded_by_the_payload(codec):
    """A header that claims more images than the payload can hold is refused before decoding; a payload that runs
    out is noticed as soon as the stack reaches the seed; and decoding must end exactly on the seed."""
    data = compress_lossless(digits((40, 6, 6), seed=1), codec).data
    c = read_container(data)
    meta = bytearray(c.meta)
    struct.pack_into("<I", meta, 2, 1 << 23)  # 8M images in a few words
    start = time.perf_counter()
    with pytest.raises(FormatError, match="cannot fit"):
        decompress_lossless(_rewrap(data, meta=bytes(meta)), codec)
    struct.pack_into("<I", meta, 2, 16 * len(c.payload) // 8)  # as many as the bound allows: runs out, or ends wrong
    with pytest.raises(FormatError, match="corrupt payload"):
        decompress_lossless(_rewrap(data, meta=bytes(meta)), codec)
    assert time.perf_counter() - start < 10
    with pytest.raises(FormatError, match="corrupt payload"):  # an extra word on top: decoding must use every word
        decompress_lossless(_rewrap(data, payload=np.append(c.payload, np.uint32(7))), codec)


def test_images_cheaper_than_the_bound_are_padded():
    """A model sure of blank images codes them in almost nothing; the file is padded to the per-image minimum."""
    torch.manual_seed(0)
    vae = VAE.from_config(VAEConfig(data_shape=(1, 6, 6), latents=(2,), hidden=((8,),))).eval()
    with torch.no_grad():
        vae.decoder[0][-1].bias.fill_(-30.0)  # P(pixel = 1) ~ 1e-13
        vae.encoder.net[-1][-1].weight.zero_()
        vae.encoder.net[-1][-1].bias.copy_(torch.tensor([0.0, 0.0, 0.5413, 0.5413]))  # q = prior: net latent cost 0
    codec = BitsBackCodec(vae, latent_bits=8, initial_words=8)
    x = np.zeros((500, 6, 6), np.uint8)
    coded = compress_lossless(x, codec)
    assert coded.net_bits < 500  # far below 16 bits an image
    payload = read_container(coded.data).payload
    assert 32 * len(payload) >= 500 * lossless_file.MIN_BITS_PER_IMAGE
    np.testing.assert_array_equal(decompress_lossless(coded.data, codec), x)


PORTABLE = """
import hashlib, sys
import numpy as np
from varinf.compression import compress_lossless, decompress_lossless, load_bitsback
codec = load_bitsback()
data = compress_lossless(np.load(sys.argv[1]), codec).data
back = decompress_lossless(open(sys.argv[2], "rb").read(), codec)
print(hashlib.sha256(data).hexdigest(), hashlib.sha256(back.tobytes()).hexdigest())
"""


def test_files_are_identical_under_every_cpu_capability_and_thread_count(tmp_path):
    """Encode here (this CPU's best kernels, one thread), then encode and decode in fresh processes under torch's
    ``default`` kernels (with numpy's SIMD dispatch and OpenBLAS's kernels forced to generic ones too), under
    ``avx2``, and with 2 threads: every process writes the same bytes and decodes our file to the same array."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_dispatch__

    x = digits((200, 28, 28), seed=7, scale=255)
    codec = load_bitsback()
    data = compress_lossless(x, codec).data
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "x.vif").write_bytes(data)
    expected = f"{hashlib.sha256(data).hexdigest()} {hashlib.sha256(x.tobytes()).hexdigest()}"
    settings = {  # the default kernels of torch, numpy's SIMD dispatch and OpenBLAS all off at once; AVX2; 2 threads
        "default kernels": {"ATEN_CPU_CAPABILITY": "default", "NPY_DISABLE_CPU_FEATURES": ",".join(__cpu_dispatch__),
                            "OPENBLAS_CORETYPE": "Prescott"},
        "ATEN_CPU_CAPABILITY=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
        "2 threads": {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
    }  # fmt: skip
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", PORTABLE, str(tmp_path / "x.npy"), str(tmp_path / "x.vif")],
            env={**os.environ, "OMP_NUM_THREADS": "1", **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        for name, env in settings.items()
    }  # fmt: skip
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, f"{name}: {err[-2000:]}"
        assert out.split()[-2:] == expected.split(), name
