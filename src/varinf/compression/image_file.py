"""Lossy image files: pad, transform, entropy code, wrap in a ``.vif`` container; and back.

:func:`compress_image` pads the image (edge replication) to a multiple of the codec's downsampling,
quantizes the latents, pushes them on an :class:`~varinf.compression.ans.AnsStack` with the integer tables
of :meth:`ImageCodec.tables`, and returns the file bytes with the model's estimate of the same rate.
:func:`decompress_image` validates the container, pops the latents (bit-exact by construction), runs the
synthesis and crops. Units: bits, bits per pixel (bpp = file bits / (H W)).

Determinism: the decoded symbols depend only on integers (integer tables, integer hyper-synthesis), and the
float synthesis runs on one thread while decoding, so a file decodes to the same pixels in every process.

Lossy meta (11 bytes): height u32, width u32, quality u16 (multiples of 1/4096), channels u8 (1 grey, 3 RGB).

Example::

    >>> import numpy as np, torch
    >>> from varinf.compression.model import CodecConfig, ImageCodec
    >>> from varinf.compression.image_file import compress_image, decompress_image
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from .ans import AnsStack, CodingError
from .container import KIND_LOSSY_IMAGE, Container, FormatError, read_container
from .model import ImageCodec
from .pretrained import load_codec

__all__ = [
    "MAX_PIXELS",
    "CompressedImage",
    "compress_file",
    "compress_image",
    "decompress_file",
    "decompress_image",
    "write_atomic",
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
    codec.eval()
    tables = codec.tables()
    with torch.no_grad():
        gain, _ = codec.gains(torch.tensor([quality]))
        y = codec.g_a(x) * gain
        stack = AnsStack()
        codec.latent.push(y, stack, tables)
        latent = codec.latent(y)  # the model's own estimate of the rate of the same rounded latents
    meta = _META.pack(image.shape[0], image.shape[1], q_fixed, channels)
    container = Container(KIND_LOSSY_IMAGE, codec.model_id(), tables.digest(), meta, stack.words())
    return CompressedImage(
        container.to_bytes(), image.shape[0], image.shape[1], quality, stack.num_bits(), float(latent.bits.sum())
    )


@contextmanager
def _single_thread():
    """Run the float synthesis on one thread: oneDNN picks thread-count-dependent summation orders, and
    the decoded pixels must not depend on the caller's thread setting (the symbols never do)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def decompress_image(data: bytes, codec: ImageCodec) -> np.ndarray:
    """Decode ``.vif`` bytes written by :func:`compress_image` with the same model; returns uint8 pixels."""
    container = read_container(data, expect_kind=KIND_LOSSY_IMAGE)
    if container.model_id != codec.model_id():
        raise FormatError(
            f"file was written with model {container.model_id.hex()}, the loaded model is {codec.model_id().hex()}"
            " (pass the model the file was written with)"
        )
    tables = codec.tables()
    if container.table_digest != tables.digest():
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
    shape = (1, codec.config.latent_channels, -(-h // m) * m // 16, -(-w // m) * m // 16)
    codec.eval()
    try:
        stack = AnsStack(container.payload)
        y_hat = codec.latent.pop(stack, shape, tables)
    except CodingError as e:
        raise FormatError(f"corrupt payload ({e})") from None
    if not stack.is_empty():
        raise FormatError("corrupt payload (data left over after decoding every latent)")
    with torch.no_grad(), _single_thread():
        _, inverse_gain = codec.gains(torch.tensor([quality]))
        x_hat = codec.decoding_synthesis()(y_hat * inverse_gain)[0, :, :h, :w]
    x_hat = torch.nan_to_num(x_hat, nan=0.0).clamp(0.0, 1.0)
    pixels = torch.round(x_hat * 255.0).to(torch.uint8).permute(1, 2, 0).numpy()
    if channels == 1:  # ITU-R 601 luma, as Pillow's "L" conversion, kept in integers for determinism
        r, g, b = (pixels[:, :, i].astype(np.int64) for i in range(3))
        pixels = ((r * 299 + g * 587 + b * 114 + 500) // 1000).astype(np.uint8)
    return np.ascontiguousarray(pixels)


def write_atomic(path: str | os.PathLike, data: bytes, force: bool = False) -> Path:
    """Write ``data`` to ``path`` via a temporary file and rename; refuses to overwrite unless ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists (use --force to overwrite)")
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


MAX_FILE_BYTES = 1 << 30


def read_vif_bytes(src: Path, dst: Path, force: bool) -> bytes:
    """A ``.vif`` file's bytes, after refusing a missing source, an existing destination (unless ``force``)
    and a file too large to be ours; checked before any model is loaded or anything is written."""
    if not src.is_file():
        raise FileNotFoundError(f"no such file: {src}")
    if dst.exists() and not force:
        raise FileExistsError(f"{dst} exists (use --force to overwrite)")
    if src.stat().st_size > MAX_FILE_BYTES:
        raise FormatError(f"{src}: too large to be a .vif file")
    return src.read_bytes()


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            grey = im.mode in ("1", "L", "LA", "I", "I;16", "F")
            return np.asarray(im.convert("L" if grey else "RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{path}: cannot read as an image ({e})") from None


def compress_file(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    quality: float | None = None,
    model: str | os.PathLike | ImageCodec | None = None,
    force: bool = False,
) -> CompressedImage:
    """Compress an image file (PNG, ...) to a ``.vif`` file with ``model`` (default: the shipped codec).

    ``quality`` defaults to ``codec.default_quality``.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"no such file: {src}")
    if dst.exists() and not force:
        raise FileExistsError(f"{dst} exists (use --force to overwrite)")
    codec = model if isinstance(model, ImageCodec) else load_codec(model)
    quality = codec.default_quality if quality is None else quality
    result = compress_image(_read_image(src), codec, quality)
    write_atomic(dst, result.data, force=force)
    return result


def decompress_file(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    model: str | os.PathLike | ImageCodec | None = None,
    force: bool = False,
) -> np.ndarray:
    """Decode a ``.vif`` file and save the pixels as an image file (format from the extension, e.g. PNG)."""
    src, dst = Path(src), Path(dst)
    data = read_vif_bytes(src, dst, force)
    codec = model if isinstance(model, ImageCodec) else load_codec(model)
    pixels = decompress_image(data, codec)
    buf = io.BytesIO()
    fmt = Image.registered_extensions().get(dst.suffix.lower())
    if fmt is None:
        raise ValueError(f"{dst}: unknown image extension (use .png)")
    Image.fromarray(pixels).save(buf, fmt)
    write_atomic(dst, buf.getvalue(), force=force)
    return pixels
