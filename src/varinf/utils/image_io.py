"""Reading image files faithfully: 8-bit grey or RGB pixels, or a one-line error that names the file and mode.

Pillow opens files in many *modes*; a plain ``convert("RGB")`` clips 16-bit grey at 255 (ruining most pixels
of a real 16-bit picture), drops transparency and ignores the EXIF orientation. :func:`read_image` instead:

* turns the picture upright per its EXIF orientation tag (as viewers show it);
* scales 16-bit (and 32-bit integer) grey down to 8 bits, :math:`v_8 = \\mathrm{round}(255\\, v / 65535)`, exact
  for 8-bit values stored as 16-bit (:math:`257\\,v`); Pillow itself reduces 16-bit colour PNGs to their high byte;
* expands palettes (a palette of greys gives grey pixels), bilevel ``1`` to 0/255, and ``CMYK``/``YCbCr``/...
  to RGB;
* drops an alpha channel only when it is fully opaque (then it holds no information); any transparency is
  refused with a message naming the mode, since nothing downstream can keep it;
* refuses floating-point images (mode ``F``) and images larger than ``max_pixels`` *before* decoding them;
* turns every Pillow failure on a malformed file into a ``ValueError`` naming the file.

Output: ``(H, W)`` uint8 for grey, ``(H, W, 3)`` uint8 for colour.

Example::

    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from varinf.utils.image_io import read_image
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = Path(d) / "grey16.png"
    ...     Image.fromarray(np.full((2, 3), 257 * 200, np.uint16)).save(path)
    ...     read_image(path).tolist()
    [[200, 200, 200], [200, 200, 200]]
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

__all__ = ["read_image"]

_GREY = ("1", "L")
_ALPHA = {"LA": "LA", "La": "LA", "PA": "RGBA", "RGBA": "RGBA", "RGBa": "RGBA"}
_WIDE_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def read_image(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """The image file at ``path`` as uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB (see module docstring).

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` (naming ``path``; a folder: "is a
    directory") for anything that is not an image this function can read faithfully.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not an image file")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    size = None
    try:
        with Image.open(path) as im:
            size = im.size
            if max_pixels is None or size[0] * size[1] <= max_pixels:
                im.load()
                upright = ImageOps.exif_transpose(im)  # a new image, valid after the file is closed
    except Image.DecompressionBombError as e:  # raised by Image.open itself, before we see the size
        raise ValueError(f"{path}: image too large ({e})") from None
    except MemoryError:
        raise ValueError(f"{path}: image too large to decode in memory") from None
    except Exception as e:  # Pillow's decoders raise many types (OSError, SyntaxError, struct.error, ...)
        raise ValueError(f"{path}: cannot read as an image ({type(e).__name__}: {e})") from None
    if max_pixels is not None and size[0] * size[1] > max_pixels:
        w, h = size
        raise ValueError(f"{path}: image is {w}x{h} = {w * h} pixels, more than the {max_pixels} supported")
    try:
        return _pixels(upright)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def _pixels(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode in _GREY:
        return np.asarray(im.convert("L"), dtype=np.uint8).copy()
    if mode in _WIDE_GREY:
        v = np.asarray(im, dtype=np.int64)
        if v.size and (v.min() < 0 or v.max() > 65535):
            raise ValueError(f"mode {mode} image with values outside 0..65535 (convert it to 8 or 16 bit first)")
        return ((v * 255 + 32767) // 65535).astype(np.uint8)
    if mode == "F":
        raise ValueError("floating-point image (mode F): convert it to 8- or 16-bit integers first")
    if mode == "P":
        rgba = im.convert("RGBA") if im.has_transparency_data else None
        rgb = _drop_opaque_alpha(np.asarray(rgba), "P with transparency") if rgba is not None else None
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8) if rgb is None else rgb
        grey = rgb[:, :, 0]
        return grey.copy() if np.array_equal(rgb, np.repeat(grey[:, :, None], 3, axis=2)) else rgb.copy()
    if mode in _ALPHA:
        out = _drop_opaque_alpha(np.asarray(im.convert(_ALPHA[mode])), mode)
        return out[:, :, 0].copy() if out.shape[2] == 1 else out.copy()
    try:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except ValueError:
        raise ValueError(f"unsupported image mode {mode}") from None


def _drop_opaque_alpha(pixels: np.ndarray, mode: str) -> np.ndarray:
    """The colour channels of ``(H, W, C + 1)`` pixels whose last channel is alpha, if it is fully opaque."""
    alpha = pixels[:, :, -1]
    if alpha.size and alpha.min() < 255:
        share = float(np.mean(alpha < 255))
        raise ValueError(
            f"image has transparency (mode {mode}, {share:.1%} of pixels not opaque), which this format cannot "
            "keep: flatten it onto a background first"
        )
    return np.ascontiguousarray(pixels[:, :, :-1])
