"""Lossless ``.vif`` files (container kind 2): a sequence of images coded by bits-back with a VAE.

:func:`compress_lossless` checks and maps the input array to the model's symbols (binary models take
pixel values {0, 1} or {0, 255}; 8-bit models 0..255), codes every image on one ANS stack
(:class:`~varinf.compression.lossless.bitsback.BitsBackCodec`) and wraps the words in a
:class:`~varinf.compression.coding.container.Container`. Words at the bottom of the stack that are still the
untouched pseudo-random seed are not stored (the decoder regenerates them). :func:`decompress_lossless`
validates the container, decodes, checks the decoder ends on the seed and the CRC32 of the restored array,
and returns an array equal to the input (same values, shape and dtype).

Lossless meta (20 bytes + dtype): images u32, channels/height/width u16, ndim u8 (2: one ``(H, W)``
image, 3: ``(N, H, W)``, 4: ``(N, C, H, W)``), value scale u8 (1 or 255), latent bits u8, seed words u16,
omitted seed words u16, CRC32 of the array's bytes u32, then the numpy dtype string (e.g. ``|u1``).

Example::

    >>> import numpy as np
    >>> from varinf.vae import VAE, VAEConfig
    >>> from varinf.compression.lossless.bitsback import BitsBackCodec
    >>> from varinf.compression.lossless.lossless_file import compress_lossless, decompress_lossless
    >>> codec = BitsBackCodec(VAE.from_config(VAEConfig(data_shape=(1, 4, 4), latents=(3,), hidden=((8,),))))
    >>> x = np.random.default_rng(0).integers(0, 2, (6, 4, 4)).astype(np.uint8) * 255
    >>> bool(np.array_equal(decompress_lossless(compress_lossless(x, codec).data, codec), x))
    True
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...utils import atomic_write_bytes
from ..coding.ans import CodingError
from ..coding.container import KIND_LOSSLESS, Container, FormatError, read_container, read_vif_bytes
from .bitsback import BitsBackCodec, seed_words
from .bitsback_model import load_bitsback

__all__ = [
    "CompressedLossless",
    "compress_lossless",
    "compress_lossless_file",
    "decompress_lossless",
    "decompress_lossless_file",
    "read_array",
]

_META = struct.Struct("<IHHHBBBHHI")
MAX_IMAGES = 1 << 24
_DTYPES = ("|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8")


@dataclass
class CompressedLossless:
    """A losslessly coded array: ``data`` (file bytes), ``num_images``, ``num_dims`` (pixels per image),
    ``image_bits`` (``(N,)`` ideal net bits per image) and ``net_bits`` (stack growth over the seed)."""

    data: bytes
    num_images: int
    num_dims: int
    image_bits: np.ndarray
    net_bits: int

    @property
    def bits_per_dim(self) -> float:
        """Bits per pixel of the whole file (header and first-image overhead included)."""
        return 8 * len(self.data) / (self.num_images * self.num_dims)


def _to_symbols(array: np.ndarray, codec: BitsBackCodec) -> tuple[np.ndarray, int, int]:
    """``(N, *data_shape)`` symbols, the value scale and the input's ndim; ValueError naming the problem."""
    array = np.asarray(array)
    c, h, w = codec.data_shape
    shapes = {2: (h, w), 3: (h, w), 4: (c, h, w)}
    if (
        array.ndim not in shapes
        or array.shape[-len(shapes[array.ndim]) :] != shapes[array.ndim]
        or (array.ndim == 2 and c != 1)
    ):
        raise ValueError(f"expected ({h}, {w}), (N, {h}, {w}) or (N, {c}, {h}, {w}) images, got shape {array.shape}")
    if array.dtype.str not in _DTYPES:
        raise ValueError(f"expected an integer or boolean array, got dtype {array.dtype}")
    if array.size == 0 or len(array.reshape(-1, c * h * w)) > MAX_IMAGES:
        raise ValueError(f"expected 1 to {MAX_IMAGES} images, got {array.shape}")
    values = array.astype(np.int64)
    lo, hi = int(values.min()), int(values.max())
    scale = 1
    if codec.symbols == 2 and hi > 1:
        if not np.all((values == 0) | (values == 255)):
            raise ValueError(
                f"this model codes binary images (values 0/1 or 0/255); got values in [{lo}, {hi}] "
                "(binarize them first, or pass an 8-bit model with --model)"
            )
        scale = 255
    elif lo < 0 or hi >= codec.symbols:
        raise ValueError(f"pixel values must lie in [0, {codec.symbols - 1}], got [{lo}, {hi}]")
    return (values // scale).reshape(-1, *codec.data_shape), scale, array.ndim


def compress_lossless(array: np.ndarray, codec: BitsBackCodec, progress=None) -> CompressedLossless:
    """Code an integer array of images (see module docstring for accepted shapes and values)."""
    symbols, scale, ndim = _to_symbols(array, codec)
    array = np.ascontiguousarray(array)
    result = codec.encode(symbols, progress=progress)
    seed = seed_words(codec.initial_words)
    words = result.words
    common = 0
    limit = min(len(seed), len(words) - 1)  # keep at least one word (the coder's head)
    while common < limit and words[common] == seed[common]:
        common += 1
    c, h, w = codec.data_shape
    meta = _META.pack(len(symbols), c, h, w, ndim, scale, codec.bins.bits, codec.initial_words, common,
                      zlib.crc32(array.tobytes())) + array.dtype.str.encode()  # fmt: skip
    container = Container(KIND_LOSSLESS, codec.model_id(), codec.table_digest(), meta, words[common:])
    return CompressedLossless(container.to_bytes(), len(symbols), codec.num_dims, result.image_bits, result.net_bits)


def decompress_lossless(data: bytes, codec: BitsBackCodec, progress=None) -> np.ndarray:
    """Decode ``.vif`` bytes written by :func:`compress_lossless` with the same model; returns the array."""
    container = read_container(data, expect_kind=KIND_LOSSLESS)
    if container.model_id != codec.model_id():
        raise FormatError(
            f"file was written with model {container.model_id.hex()}, the loaded model is {codec.model_id().hex()}"
            " (pass the model the file was written with)"
        )
    if container.table_digest != codec.table_digest():
        raise FormatError("file was written with latent bins this platform does not reproduce")
    if len(container.meta) != _META.size + 3:
        raise FormatError(f"corrupt lossless header (meta of {len(container.meta)} bytes)")
    n, c, h, w, ndim, scale, bits, seed_count, common, crc = _META.unpack_from(container.meta)
    dtype = container.meta[_META.size :].decode("ascii", errors="replace")
    shape_ok = (c, h, w) == codec.data_shape and ndim in (2, 3, 4) and (ndim != 2 or n == 1)
    if not (1 <= n <= MAX_IMAGES and shape_ok and scale in (1, 255) and dtype in _DTYPES):
        raise FormatError(f"corrupt lossless header ({n} images {c}x{h}x{w}, ndim {ndim}, dtype {dtype!r})")
    if bits != codec.bins.bits or seed_count != codec.initial_words or common > seed_count:
        raise FormatError(f"corrupt lossless header (latent bits {bits}, seed {common}/{seed_count} words)")
    if not container.payload.size or n > 32 * (container.payload.size + common):
        # a real image costs more than a bit: this bounds the decoding time by the file size
        raise FormatError(f"corrupt lossless file ({n} images in {container.payload.size} words)")
    words = np.concatenate([seed_words(seed_count)[:common], container.payload])
    try:
        symbols = codec.decode(words, n, progress=progress)
    except CodingError as e:
        raise FormatError(f"corrupt payload ({e})") from None
    shape = {2: (h, w), 3: (n, h, w), 4: (n, c, h, w)}[ndim]
    array = (symbols.astype(np.int64) * scale).astype(np.dtype(dtype)).reshape(shape)
    if zlib.crc32(np.ascontiguousarray(array).tobytes()) != crc:
        raise FormatError("decoded data fail their CRC32 check (file written by another platform or build?)")
    return array


def read_array(path: str | os.PathLike) -> np.ndarray:
    """An ``.npy`` array (never unpickled) or a greyscale image file (PNG, ...) as ``(H, W)`` uint8."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if path.suffix.lower() == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ValueError(f"{path}: cannot read as a .npy array ({e})") from None
    try:
        with Image.open(path) as im:
            im.load()
            pixels = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{path}: cannot read as an image or .npy array ({e})") from None
    if np.any(pixels != pixels[:, :, :1]):
        raise ValueError(f"{path}: lossless coding takes greyscale images (this one has colour)")
    return np.ascontiguousarray(pixels[:, :, 0])


def compress_lossless_file(src, dst, model=None, force: bool = False, progress=None) -> CompressedLossless:
    """Compress an ``.npy`` array or greyscale image file losslessly (default model: the shipped one)."""
    src, dst = Path(src), Path(dst)
    if dst.exists() and not force:
        raise FileExistsError(f"{dst} exists (use --force to overwrite)")
    codec = model if isinstance(model, BitsBackCodec) else load_bitsback(model)
    result = compress_lossless(read_array(src), codec, progress=progress)
    atomic_write_bytes(dst, result.data, overwrite=force)
    return result


def decompress_lossless_file(src, dst, model=None, force: bool = False, progress=None) -> np.ndarray:
    """Decode a lossless ``.vif`` file to ``.npy`` (any array) or an image file (one ``(H, W)`` image)."""
    src, dst = Path(src), Path(dst)
    data = read_vif_bytes(src, dst, force)
    codec = model if isinstance(model, BitsBackCodec) else load_bitsback(model)
    array = decompress_lossless(data, codec, progress=progress)
    buf = io.BytesIO()
    if dst.suffix.lower() == ".npy":
        np.save(buf, array, allow_pickle=False)
    else:
        fmt = Image.registered_extensions().get(dst.suffix.lower())
        if fmt is None:
            raise ValueError(f"{dst}: unknown output extension (use .npy, or .png for one image)")
        image = array.reshape(array.shape[-2:]) if array.size == array.shape[-1] * array.shape[-2] else None
        if image is None:
            raise ValueError(f"{dst}: an image file holds one image; this file has {array.shape} (use .npy)")
        Image.fromarray(image.astype(np.uint8)).save(buf, fmt)
    atomic_write_bytes(dst, buf.getvalue(), overwrite=force)
    return array
