"""A folder of image files (PNG, JPEG, WebP, ...) as ``uint8`` tensors ``(N, C, H, W)`` via Pillow.

For training VAEs on data other than MNIST. Files are read in sorted name order; every image is converted
to ``mode`` (``"L"`` grey or ``"RGB"``) after a faithful read (:func:`varinf.utils.image_io.read_image`: 16-bit
scaled down, EXIF orientation applied, transparency refused) and, when ``size`` is given, center-cropped to the largest square
and resized to ``size x size`` (Lanczos) so they stack into one tensor.

Example:
    >>> from varinf.data import load_image_folder  # doctest: +SKIP
    >>> split = load_image_folder("photos/", size=32, mode="RGB")  # doctest: +SKIP
    >>> split.images.shape  # doctest: +SKIP
    torch.Size([120, 3, 32, 32])
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..utils.image_io import read_image
from .mnist import ImageSplit

__all__ = ["IMAGE_SUFFIXES", "load_image_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".avif", ".pgm", ".ppm")


def _square(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s)).resize((size, size), Image.Resampling.LANCZOS)


def load_image_folder(
    root: str | os.PathLike, size: int | None = None, mode: str = "RGB", limit: int | None = None
) -> ImageSplit:
    """Read every image file directly inside ``root`` into an :class:`ImageSplit` (no labels).

    Args:
        root: folder of images (not searched recursively; other files are ignored).
        size: output side length after a center square crop; ``None`` keeps sizes (they must all agree).
        mode: Pillow mode, ``"L"`` (1 channel) or ``"RGB"`` (3 channels).
        limit: read at most this many files (sorted by name).
    """
    if mode not in ("L", "RGB"):
        raise ValueError(f"mode must be 'L' or 'RGB', got {mode!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if limit is not None:
        files = files[:limit]
    if not files:
        raise ValueError(f"{root}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    arrays = []
    for f in files:
        img = Image.fromarray(read_image(f)).convert(mode)  # ValueError naming the file if unreadable
        if size is not None:
            img = _square(img, size)
        arrays.append(np.asarray(img, dtype=np.uint8))
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"{root}: images have different sizes {sorted(shapes)[:3]}...; pass size= to resize")
    x = torch.from_numpy(np.stack(arrays))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
    return ImageSplit(images=x)
