"""Lossless ``.vif`` files (container kind 2): a sequence of images coded by bits-back with a VAE.

:func:`compress_lossless` checks and maps the input array to the model's symbols (binary models take
pixel values {0, 1} or {0, 255}; 8-bit models 0..255), codes every image on one ANS stack
(:class:`~varinf.compression.lossless.bitsback.BitsBackCodec`) and wraps the words in a
:class:`~varinf.compression.coding.container.Container` whose model id is the hash of the *integer* model.
Words at the bottom of the stack that no pop ever reached are still the pseudo-random seed and are not stored
(the decoder regenerates them). :func:`decompress_lossless` validates the container, checks the file's
lossless-format and integer-network versions and the model id (naming the model the file needs), decodes, checks
that decoding ends exactly on the seed (every payload word used) and the CRC32 of the restored array, and returns
an array equal to the input (same values, shape and dtype).

Bounded decoding: a file carries at least ``MIN_BITS_PER_IMAGE`` payload bits per image (an encoder pads files of
images cheaper than that with zero symbols), so the declared image count is checked against the payload size
before anything is allocated; the decoder's stack may never drop below the seed words it regenerated (a file
whose data run out fails at once), and output is allocated batch by batch as it is decoded.

Lossless meta, format 2 (32 bytes + model name): lossless format version u8 (2), integer-network version u8,
images u32, channels/height/width u16, ndim u8 (2: one ``(H, W)`` image, 3: ``(N, H, W)``, 4: ``(N, C, H, W)``),
value scale u8 (1 or 255), latent bits u8, seed words u16, omitted seed words u16, batch size u16, padding
symbols u32, CRC32 of the array's bytes u32, the numpy dtype string (3 bytes, e.g. ``|u1``), then the model's
name (UTF-8, at most 64 bytes; for messages). Format 1 (float networks, 23 bytes of meta) is refused by name.

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
from ..coding.ans import AnsStack, CodingError
from ..coding.container import KIND_LOSSLESS, Container, FormatError, read_container, read_vif_bytes
from .bitsback import BitsBackCodec, seed_words
from .bitsback_model import load_bitsback
from .integer_vae import INTEGER_NET_VERSION

__all__ = [
    "LOSSLESS_FORMAT",
    "MIN_BITS_PER_IMAGE",
    "CompressedLossless",
    "compress_lossless",
    "compress_lossless_file",
    "decompress_lossless",
    "decompress_lossless_file",
    "read_array",
]

_META = struct.Struct("<BBIHHHBBBHHHII")
LOSSLESS_FORMAT = 2  # 1: float networks (not portable), refused
MAX_IMAGES = 1 << 24
MIN_BITS_PER_IMAGE = 16  # payload bits per image, guaranteed by the encoder (the cheapest MNIST digit costs ~40)
_PAD_BITS = 16  # padding symbols are zeros coded uniformly on 16 bits
_V1_META = 23
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
    limit = min(result.untouched_words, len(words) - 1)  # keep at least one word (the coder's head)
    while common < limit and words[common] == seed[common]:
        common += 1
    pad = 0
    needed = -(-len(symbols) * MIN_BITS_PER_IMAGE // 32)
    if len(words) - common < needed:  # images too cheap for the bound: push zeros the decoder pops and checks
        stack = AnsStack(words)
        pad = (needed - (len(words) - common)) * 32 // _PAD_BITS + 2
        stack.push_uniform(np.zeros(pad, np.int64), 1 << _PAD_BITS)
        words = stack.words()
    c, h, w = codec.data_shape
    meta = _META.pack(LOSSLESS_FORMAT, INTEGER_NET_VERSION, len(symbols), c, h, w, ndim, scale, codec.bins.bits,
                      codec.initial_words, common, codec.batch_size, pad, zlib.crc32(array.tobytes()))  # fmt: skip
    meta += array.dtype.str.encode() + _name_bytes(codec)
    container = Container(KIND_LOSSLESS, codec.model_id(), codec.table_digest(), meta, words[common:])
    return CompressedLossless(container.to_bytes(), len(symbols), codec.num_dims, result.image_bits, result.net_bits)


def _name_bytes(codec: BitsBackCodec) -> bytes:
    return codec.name.encode("utf-8", errors="replace")[:64]


def _describe(name: bytes | str, model_id: bytes) -> str:
    name = name.decode("utf-8", errors="replace") if isinstance(name, bytes) else name
    return f"'{name}' (id {model_id.hex()})" if name else f"id {model_id.hex()}"


def decompress_lossless(data: bytes, codec: BitsBackCodec, progress=None) -> np.ndarray:
    """Decode ``.vif`` bytes written by :func:`compress_lossless` with the same model; returns the array."""
    container = read_container(data, expect_kind=KIND_LOSSLESS)
    meta = container.meta
    if len(meta) == _V1_META:
        raise FormatError(
            "this lossless file uses format 1 (float networks, decodable only where it was written); this varinf "
            f"reads format {LOSSLESS_FORMAT}: decode it with the varinf that wrote it and compress it again"
        )
    if not meta or meta[0] != LOSSLESS_FORMAT:
        version = meta[0] if meta else "?"
        raise FormatError(f"unsupported lossless format {version} (this varinf reads format {LOSSLESS_FORMAT})")
    if len(meta) < _META.size + 3:
        raise FormatError(f"corrupt lossless header (meta of {len(meta)} bytes)")
    _, net_version, n, c, h, w, ndim, scale, bits, seed_count, common, batch, pad, crc = _META.unpack_from(meta)
    dtype = meta[_META.size : _META.size + 3].decode("ascii", errors="replace")
    wanted = _describe(meta[_META.size + 3 :], container.model_id)
    if net_version != INTEGER_NET_VERSION:
        raise FormatError(
            f"this file needs bits-back model {wanted} in integer-network version {net_version}; this varinf "
            f"implements version {INTEGER_NET_VERSION} (decode it with a varinf that implements {net_version})"
        )
    if container.model_id != codec.model_id():
        raise FormatError(
            f"this file needs bits-back model {wanted}; the loaded model is "
            f"{_describe(codec.name, codec.model_id())} (pass the model the file was written with)"
        )
    if container.table_digest != codec.table_digest():
        raise FormatError("file was written with integer tables this build does not reproduce (table digest)")
    shape_ok = (c, h, w) == codec.data_shape and ndim in (2, 3, 4) and (ndim != 2 or n == 1)
    if not (1 <= n <= MAX_IMAGES and shape_ok and scale in (1, 255) and dtype in _DTYPES):
        raise FormatError(f"corrupt lossless header ({n} images {c}x{h}x{w}, ndim {ndim}, dtype {dtype!r})")
    if bits != codec.bins.bits or seed_count != codec.initial_words or common > seed_count or batch < 1:
        raise FormatError(
            f"corrupt lossless header (latent bits {bits}, seed {common}/{seed_count} words, batch {batch})"
        )
    if not container.payload.size or n * MIN_BITS_PER_IMAGE > 32 * container.payload.size:
        # every image carries MIN_BITS_PER_IMAGE payload bits: this bounds decoding time and memory by the file size
        raise FormatError(f"corrupt lossless file ({n} images cannot fit in {container.payload.size} payload words)")
    if pad * _PAD_BITS > 32 * container.payload.size:
        raise FormatError(f"corrupt lossless header ({pad} padding symbols)")
    words = np.concatenate([seed_words(seed_count)[:common], container.payload])
    try:
        if pad:
            stack = AnsStack(words)
            if np.any(stack.pop_uniform(pad, 1 << _PAD_BITS)):
                raise CodingError("nonzero padding")
            words = stack.words()
        symbols = codec.decode(words, n, floor_words=common, batch_size=batch, progress=progress)
    except CodingError as e:
        raise FormatError(f"corrupt payload ({e})") from None
    shape = {2: (h, w), 3: (n, h, w), 4: (n, c, h, w)}[ndim]
    array = (symbols.astype(np.int64) * scale).astype(np.dtype(dtype)).reshape(shape)
    if zlib.crc32(np.ascontiguousarray(array).tobytes()) != crc:
        raise FormatError("decoded data fail their CRC32 check (corrupt file)")
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
