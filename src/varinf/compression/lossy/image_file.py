"""Lossy image files: pixels in, ``.vif`` bytes out, and back. The coding itself is the model's
(:meth:`ImageCodec.compress` / :meth:`ImageCodec.decompress`); this module holds only the file.

:func:`compress_image` checks the image, pads it (edge replication) to a multiple of ``codec.multiple``,
has the codec code it, and wraps the ANS words in a :class:`~varinf.compression.coding.container.Container`
with the model id, the table digest and the header below; it returns the file bytes with the model's estimate
of the same rate. :func:`decompress_image` validates the container against the model, has the codec decode
the words, then crops, clamps and rounds to uint8 (grey files back to one channel). Units: bits, bits per
pixel (bpp = file bits / (H W)). :func:`compress_file` / :func:`decompress_file` add image-file I/O (Pillow).

Lossy meta (11 bytes): height u32, width u32, quality u16 (multiples of 1/4096), channels u8 (1 grey, 3 RGB).

Maximum image size: sides up to ``MAX_SIDE`` = 65,536 and at most ``MAX_PIXELS`` = 2**24 pixels (16.8 MP, e.g.
4096 x 4096); decoding takes about 190 bytes of memory and 0.4-0.6 µs of one core per (padded) pixel, so the largest
image needs about 3.2 GB. A file must also carry enough payload for the size it declares
(:mod:`~varinf.compression.lossy.size_bound`): with the shipped model at most about 1,630 pixels per payload byte,
so decoding time and memory are bounded by the file's size (a 735-byte file declaring 4096 x 4096 is refused at
once). Any file that is not a valid stream raises :class:`~varinf.compression.coding.container.FormatError`.

Example::

    >>> import numpy as np, torch
    >>> from varinf.compression.lossy.model import CodecConfig, ImageCodec
    >>> from varinf.compression.lossy.image_file import compress_image, decompress_image
    >>> codec = ImageCodec(CodecConfig(channels=8, latent_channels=8, hyper_channels=8)).eval()
    >>> img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    >>> result = compress_image(img, codec, quality=0)
    >>> decompress_image(result.data, codec).shape
    (40, 50, 3)
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ...utils import atomic_write_bytes, refuse_input_as_output
from ...utils.image_io import read_image
from ..coding.ans import CodingError
from ..coding.container import KIND_LOSSY_IMAGE, Container, FormatError, read_container, read_vif_bytes
from .model import ImageCodec
from .pretrained import load_codec

__all__ = [
    "MAX_PIXELS",
    "CompressedImage",
    "compress_file",
    "compress_image",
    "decompress_file",
    "decompress_image",
]

MAX_PIXELS = 2**24  # 16.7 megapixels (e.g. 4096x4096): coding needs ~300 bytes/pixel of activations
MAX_SIDE = 2**16
_META = struct.Struct("<IIHB")
QUALITY_STEPS = 4096


@dataclass
class CompressedImage:
    """A compressed image and its rate accounting.

    Attributes:
        data: the ``.vif`` file bytes.
        height, width: image size in pixels.
        quality: the quality actually used (rounded to a multiple of 1/4096).
        payload_bits: bits of the ANS payload alone.
        estimated_bits: the model's rate for the same rounded latents, :math:`-\\log_2 p(\\hat y, \\hat z)`.
    """

    data: bytes
    height: int
    width: int
    quality: float
    payload_bits: int
    estimated_bits: float

    @property
    def file_bits(self) -> int:
        return 8 * len(self.data)

    @property
    def bpp(self) -> float:
        """Bits per pixel of the whole file (header included)."""
        return self.file_bits / (self.height * self.width)


def _to_tensor(image: np.ndarray, multiple: int) -> tuple[torch.Tensor, int]:
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (got {image.dtype})")
    channels = 1 if image.ndim == 2 else image.shape[2] if image.ndim == 3 else 0
    if channels not in (1, 3):
        raise ValueError(f"image must be (H, W) grey or (H, W, 3) RGB (got shape {image.shape})")
    h, w = image.shape[:2]
    if h < 1 or w < 1 or h > MAX_SIDE or w > MAX_SIDE or h * w > MAX_PIXELS:
        raise ValueError(f"image size {h}x{w} is outside the supported range (1..{MAX_SIDE}, <= {MAX_PIXELS} px)")
    rgb = np.repeat(image[:, :, None], 3, axis=2) if channels == 1 else image
    x = torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1)[None] / 255.0
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, channels


def compress_image(image: np.ndarray, codec: ImageCodec, quality: float) -> CompressedImage:
    """Compress an ``(H, W, 3)`` or ``(H, W)`` uint8 image at ``quality`` in ``[0, codec.max_quality]``."""
    if not (0.0 <= float(quality) <= codec.max_quality):
        raise ValueError(f"quality must lie in [0, {codec.max_quality:g}] for this model (got {quality})")
    q_fixed = round(float(quality) * QUALITY_STEPS)
    quality = q_fixed / QUALITY_STEPS
    x, channels = _to_tensor(image, codec.multiple)
    streams = codec.compress(x, quality)
    meta = _META.pack(image.shape[0], image.shape[1], q_fixed, channels)
    container = Container(KIND_LOSSY_IMAGE, codec.model_id(), codec.tables().digest(), meta, streams.words)
    return CompressedImage(
        container.to_bytes(), image.shape[0], image.shape[1], quality, streams.num_bits, streams.estimated_bits
    )


def decompress_image(data: bytes, codec: ImageCodec) -> np.ndarray:
    """Decode ``.vif`` bytes written by :func:`compress_image` with the same model; returns uint8 pixels."""
    container = read_container(data, expect_kind=KIND_LOSSY_IMAGE)
    if container.model_id != codec.model_id():
        raise FormatError(
            f"file was written with model {container.model_id.hex()}, the loaded model is {codec.model_id().hex()}"
            " (pass the model the file was written with)"
        )
    if container.table_digest != codec.tables().digest():
        raise FormatError("file was written with coding tables this platform does not reproduce for this model")
    if len(container.meta) != _META.size:
        raise FormatError(f"corrupt lossy header (meta of {len(container.meta)} bytes)")
    h, w, q_fixed, channels = _META.unpack(container.meta)
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE and h * w <= MAX_PIXELS) or channels not in (1, 3):
        raise FormatError(f"corrupt lossy header (image {h}x{w}x{channels})")
    quality = q_fixed / QUALITY_STEPS
    if quality > codec.max_quality:
        raise FormatError(f"corrupt lossy header (quality {quality} > {codec.max_quality})")
    m = codec.multiple
    try:
        x_hat = codec.decompress(container.payload, (-(-h // m) * m, -(-w // m) * m), quality)[0, :, :h, :w]
    except CodingError as e:
        raise FormatError(f"corrupt payload ({e})") from None
    x_hat = torch.nan_to_num(x_hat, nan=0.0).clamp(0.0, 1.0)
    pixels = torch.round(x_hat * 255.0).to(torch.uint8).permute(1, 2, 0).numpy()
    if channels == 1:  # ITU-R 601 luma, as Pillow's "L" conversion, kept in integers for determinism
        r, g, b = (pixels[:, :, i].astype(np.int64) for i in range(3))
        pixels = ((r * 299 + g * 587 + b * 114 + 500) // 1000).astype(np.uint8)
    return np.ascontiguousarray(pixels)


def compress_file(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    quality: float | None = None,
    model: str | os.PathLike | ImageCodec | None = None,
    force: bool = False,
) -> CompressedImage:
    """Compress an image file (PNG, ...) to a ``.vif`` file with ``model`` (default: the shipped codec).

    ``quality`` defaults to ``codec.default_quality``. The image is read faithfully or refused
    (:func:`~varinf.utils.image_io.read_image`: 16-bit scaled down, EXIF orientation applied, transparency refused).
    ``force`` replaces an existing ``dst`` but never an input: ``dst`` being ``src`` or a file of the ``model`` folder
    (also through a symlink or a hard link) raises ``ValueError``, as in :func:`decompress_file`.
    """
    src, dst = Path(src), Path(dst)
    refuse_input_as_output(dst, [src, model])
    pixels = read_image(src, max_pixels=MAX_PIXELS)
    if dst.exists() and not force:
        raise FileExistsError(f"{dst} exists (use --force to overwrite)")
    codec = model if isinstance(model, ImageCodec) else load_codec(model)
    quality = codec.default_quality if quality is None else quality
    result = compress_image(pixels, codec, quality)
    atomic_write_bytes(dst, result.data, overwrite=force)
    return result


def decompress_file(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    model: str | os.PathLike | ImageCodec | None = None,
    force: bool = False,
) -> np.ndarray:
    """Decode a ``.vif`` file and save the pixels as an image file (format from the extension, e.g. PNG); ``dst``
    may not be an input (see :func:`compress_file`)."""
    src, dst = Path(src), Path(dst)
    refuse_input_as_output(dst, [src, model])
    data = read_vif_bytes(src, dst, force)
    codec = model if isinstance(model, ImageCodec) else load_codec(model)
    pixels = decompress_image(data, codec)
    buf = io.BytesIO()
    fmt = Image.registered_extensions().get(dst.suffix.lower())
    if fmt is None:
        raise ValueError(f"{dst}: unknown image extension (use .png)")
    Image.fromarray(pixels).save(buf, fmt)
    atomic_write_bytes(dst, buf.getvalue(), overwrite=force)
    return pixels
