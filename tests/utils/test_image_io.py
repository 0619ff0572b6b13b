"""read_image: every Pillow mode read faithfully (16-bit scaled, never clipped; palettes; alpha kept out only when
opaque; EXIF orientation) or refused with a one-line ValueError naming the file and the mode."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from varinf.utils.image_io import read_image

RNG = np.random.default_rng(0)


def _png(path, width, height, bit_depth, colour_type, rows: bytes = b"") -> None:
    """A PNG written chunk by chunk (Pillow cannot write 16-bit colour, nor lie about its size)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )


def _png16(path, values: np.ndarray, colour_type: int) -> None:
    """``values`` ``(H, W, C)`` uint16."""
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in values)
    _png(path, values.shape[1], values.shape[0], 16, colour_type, rows)


def test_16_bit_grey_is_scaled_down_never_clipped(tmp_path):
    """The I;16 -> L conversion clips at 255; a 16-bit gradient must map onto the whole 8-bit range instead."""
    values = np.linspace(0, 65535, 64 * 64).round().astype(np.uint16).reshape(64, 64)
    Image.fromarray(values).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode == "I;16"
    out = read_image(tmp_path / "g16.png")
    assert out.dtype == np.uint8 and out.shape == (64, 64)
    np.testing.assert_allclose(out, values / 257.0, atol=0.5 + 1e-9)
    assert np.mean(out >= 250) < 0.03  # clipping left 99% of these pixels at 255
    eight = RNG.integers(0, 256, (5, 7), dtype=np.uint16)
    Image.fromarray(eight * 257).save(tmp_path / "exact.png")  # 8-bit values stored as 16 bit come back exactly
    np.testing.assert_array_equal(read_image(tmp_path / "exact.png"), eight)


def test_16_bit_colour_keeps_the_high_byte(tmp_path):
    values = RNG.integers(0, 65536, (6, 9, 3)).astype(np.uint16)
    _png16(tmp_path / "rgb16.png", values, 2)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb16.png"), values >> 8)


def test_32_bit_integer_grey_is_scaled_or_refused(tmp_path):
    values = RNG.integers(0, 65536, (4, 5)).astype(np.int32)
    Image.fromarray(values, "I").save(tmp_path / "i32.tif")
    np.testing.assert_allclose(read_image(tmp_path / "i32.tif"), values / 257.0, atol=0.5 + 1e-9)
    Image.fromarray(values * 1000, "I").save(tmp_path / "wide.tif")
    with pytest.raises(ValueError, match=r"wide\.tif: mode I image with values outside 0\.\.65535"):
        read_image(tmp_path / "wide.tif")


def test_bilevel_becomes_0_and_255(tmp_path):
    bits = RNG.integers(0, 2, (8, 8)).astype(bool)
    Image.fromarray(bits).save(tmp_path / "b.png")
    np.testing.assert_array_equal(read_image(tmp_path / "b.png"), bits * 255)


def test_palette_is_expanded_and_grey_palettes_stay_grey(tmp_path):
    index = RNG.integers(0, 4, (6, 5)).astype(np.uint8)
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 200, 0], [10, 20, 30]], np.uint8)
    im = Image.fromarray(index, "P")
    im.putpalette(colours.ravel().tolist())
    im.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), colours[index])
    im.putpalette(np.repeat(np.array([0, 50, 100, 250], np.uint8), 3).tolist())
    im.save(tmp_path / "grey_p.png")
    np.testing.assert_array_equal(read_image(tmp_path / "grey_p.png"), np.array([0, 50, 100, 250])[index])


def test_palette_transparency_is_refused_unless_unused(tmp_path):
    index = RNG.integers(0, 3, (6, 5)).astype(np.uint8)
    im = Image.fromarray(index, "P")
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 200, 0, 1, 2, 3])
    im.save(tmp_path / "unused.png", transparency=3)  # transparent entry no pixel uses: nothing to lose
    np.testing.assert_array_equal(read_image(tmp_path / "unused.png")[:, :, 0], np.array([0, 255, 0])[index])
    im.save(tmp_path / "used.png", transparency=1)
    with pytest.raises(ValueError, match=r"used\.png: image has transparency \(mode P with transparency"):
        read_image(tmp_path / "used.png")


def test_grey_with_alpha_is_kept_when_opaque_and_refused_otherwise(tmp_path):
    grey = RNG.integers(0, 256, (7, 4), dtype=np.uint8)
    Image.fromarray(np.stack([grey, np.full_like(grey, 255)], -1), "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), grey)
    alpha = np.full_like(grey, 255)
    alpha[0, 0] = 0
    Image.fromarray(np.stack([grey, alpha], -1), "LA").save(tmp_path / "la_t.png")
    with pytest.raises(ValueError, match=r"mode LA, 3\.6% of pixels not opaque"):
        read_image(tmp_path / "la_t.png")


def test_rgba_is_kept_when_opaque_and_refused_otherwise(tmp_path):
    rgb = RNG.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    opaque = np.concatenate([rgb, np.full((5, 6, 1), 255, np.uint8)], -1)
    Image.fromarray(opaque, "RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), rgb)
    opaque[..., 3] = 128
    Image.fromarray(opaque, "RGBA").save(tmp_path / "rgba_t.png")
    with pytest.raises(ValueError, match=r"rgba_t\.png: image has transparency \(mode RGBA"):
        read_image(tmp_path / "rgba_t.png")


def test_16_bit_grey_alpha_with_transparency_is_refused(tmp_path):
    values = RNG.integers(0, 65536, (4, 4, 2)).astype(np.uint16)  # Pillow opens 16-bit LA as RGBA
    _png16(tmp_path / "la16.png", values, 4)
    with pytest.raises(ValueError, match="image has transparency"):
        read_image(tmp_path / "la16.png")


def test_exif_orientation_is_applied(tmp_path):
    pixels = RNG.integers(0, 256, (3, 5, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "rotated.png", exif=exif)
    np.testing.assert_array_equal(read_image(tmp_path / "rotated.png"), np.rot90(pixels, k=-1))
    exif[0x0112] = 2  # mirrored left-right
    Image.fromarray(pixels).save(tmp_path / "mirrored.png", exif=exif)
    np.testing.assert_array_equal(read_image(tmp_path / "mirrored.png"), pixels[:, ::-1])


def test_cmyk_becomes_rgb(tmp_path):
    Image.new("CMYK", (4, 3), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=100)
    out = read_image(tmp_path / "c.jpg")
    assert out.shape == (3, 4, 3) and out[..., 0].min() > 200 and out[..., 1:].max() < 60  # red


def test_float_images_are_refused(tmp_path):
    Image.fromarray(RNG.random((3, 3)).astype(np.float32), "F").save(tmp_path / "f.tif")
    with pytest.raises(ValueError, match=r"f\.tif: floating-point image \(mode F\)"):
        read_image(tmp_path / "f.tif")


def test_bad_files_give_one_line_errors_naming_the_path(tmp_path):
    Image.fromarray(RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.png").write_text("hello")
    for name in ("truncated.png", "text.png"):
        with pytest.raises(ValueError, match=rf"{name}: cannot read as an image") as info:
            read_image(tmp_path / name)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="is a directory"):
        read_image(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_image(tmp_path / "missing.png")


def test_huge_declared_size_is_refused_before_decoding(tmp_path):
    _png(tmp_path / "bomb.png", 5000, 6000, 8, 0)  # 30 MP declared, a few bytes of data
    with pytest.raises(ValueError, match=r"bomb\.png: image is 5000x6000 = 30000000 pixels, more than the 16777216"):
        read_image(tmp_path / "bomb.png", max_pixels=1 << 24)
    _png(tmp_path / "pillow_bomb.png", 60000, 60000, 8, 0)  # beyond Pillow's own decompression-bomb limit
    with pytest.raises(ValueError, match=r"pillow_bomb\.png: image too large \(Image size \(3600000000 pixels\)"):
        read_image(tmp_path / "pillow_bomb.png")
