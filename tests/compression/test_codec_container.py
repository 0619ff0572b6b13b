"""The .vif container: round trip, and every corruption or truncation gives a clear FormatError (fuzzed)."""

from __future__ import annotations

import struct
import time
import zlib

import numpy as np
import pytest

from varinf.compression import FormatError, compress_image, decompress_image
from varinf.compression.coding.container import Container, read_container


def test_container_round_trip():
    c = Container(1, b"12345678", 0xDEADBEEF, b"meta!", np.arange(1, 10, dtype=np.uint32))
    back = read_container(c.to_bytes())
    assert (back.kind, back.model_id, back.table_digest, back.meta) == (1, b"12345678", 0xDEADBEEF, b"meta!")
    np.testing.assert_array_equal(back.payload, c.payload)
    assert len(c.to_bytes()) == c.num_bytes


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "not a .vif"),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), "magic"),
        (b"\x89VIF", "truncated"),
    ],
)
def test_foreign_and_short_files(blob, message):
    with pytest.raises(FormatError, match=message):
        read_container(blob)


def test_huge_declared_payload_is_refused_without_allocating():
    good = Container(1, bytes(8), 0, b"", np.array([7], np.uint32)).to_bytes()
    bad = bytearray(good)
    struct.pack_into("<I", bad, 20, 0xFFFFFFF0)  # claims a 4 GiB payload
    with pytest.raises(FormatError, match="truncated"):
        read_container(bytes(bad))


def test_fuzzed_files_always_fail_cleanly(tiny_codec, picture):
    data = compress_image(picture[:96, :80], tiny_codec, quality=1.0).data
    assert decompress_image(data, tiny_codec).shape == (96, 80, 3)
    rng = np.random.default_rng(0)
    start, n = time.perf_counter(), 0
    for trial in range(600):
        blob = bytearray(data)
        kind = trial % 4
        if kind == 0:  # flip 1-4 random bits
            for _ in range(int(rng.integers(1, 5))):
                i = int(rng.integers(len(blob)))
                blob[i] ^= 1 << int(rng.integers(8))
        elif kind == 1:  # truncate
            blob = blob[: int(rng.integers(len(blob)))]
        elif kind == 2:  # append garbage
            blob += rng.integers(0, 256, int(rng.integers(1, 20)), dtype=np.uint8).tobytes()
        else:  # overwrite a random run of bytes
            i = int(rng.integers(len(blob)))
            blob[i : i + 8] = rng.integers(0, 256, len(blob[i : i + 8]), dtype=np.uint8).tobytes()
            if bytes(blob) == data:
                continue
        with pytest.raises(FormatError):
            decompress_image(bytes(blob), tiny_codec)
        n += 1
    assert n > 500 and time.perf_counter() - start < 30


def test_payload_tampering_with_a_valid_crc_never_crashes(tiny_codec, picture):
    """An adversary who fixes the CRC gets either a clear error or an image of the declared size."""
    data = compress_image(picture[:64, :64], tiny_codec, quality=2.0).data
    header_end = 20 + 11 + 4
    rng = np.random.default_rng(1)
    outcomes = {"error": 0, "image": 0}
    for _ in range(60):
        blob = bytearray(data[:-4])
        i = int(rng.integers(header_end, len(blob)))
        blob[i] = int(rng.integers(256))
        blob += struct.pack("<I", zlib.crc32(bytes(blob)))
        try:
            out = decompress_image(bytes(blob), tiny_codec)
            assert out.shape == (64, 64, 3) and out.dtype == np.uint8
            outcomes["image"] += 1
        except FormatError:
            outcomes["error"] += 1
    assert sum(outcomes.values()) == 60


def test_header_fields_are_validated(tiny_codec, picture):
    data = compress_image(picture[:32, :32], tiny_codec, quality=0.0).data

    def with_crc(b: bytearray) -> bytes:
        return bytes(b[:-4]) + struct.pack("<I", zlib.crc32(bytes(b[:-4])))

    bad = bytearray(data)
    struct.pack_into("<I", bad, 20, 2**31)  # height
    with pytest.raises(FormatError, match="corrupt lossy header"):
        decompress_image(with_crc(bad), tiny_codec)
    bad = bytearray(data)
    bad[4] = 99  # version
    with pytest.raises(FormatError, match="version"):
        decompress_image(with_crc(bad), tiny_codec)
    bad = bytearray(data)
    bad[8] ^= 0xFF  # model id
    with pytest.raises(FormatError, match="written with model"):
        decompress_image(with_crc(bad), tiny_codec)
    bad = bytearray(data)
    bad[16] ^= 0xFF  # table digest
    with pytest.raises(FormatError, match="coding tables"):
        decompress_image(with_crc(bad), tiny_codec)
