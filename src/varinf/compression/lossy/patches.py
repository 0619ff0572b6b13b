"""Training patches for the lossy codec: bundled sample pictures or any folder of images (never Kodak).

:func:`builtin_images` gathers the photographs that ship with installed packages (scikit-image's
``skimage.data`` files, scikit-learn's two sample images, matplotlib's ``grace_hopper.jpg``), so a codec can
be trained without any download. :func:`folder_images` reads every image under a folder. A
:class:`PatchSampler` draws random crops from a small multi-scale pyramid of each picture (downscaling by
0.75 and 0.5 removes JPEG artifacts and adds coarser structure), with flips and 90° rotations.

Shapes: images are ``(H, W, 3)`` uint8; ``sample`` returns a float tensor ``(B, 3, P, P)`` in [0, 1].

Example::

    >>> import numpy as np
    >>> from varinf.compression.lossy.patches import PatchSampler
    >>> sampler = PatchSampler([np.zeros((80, 90, 3), np.uint8)], patch_size=64)
    >>> tuple(sampler.sample(2, np.random.default_rng(0)).shape)
    (2, 3, 64, 64)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ...utils.image_io import read_image

__all__ = ["PatchSampler", "builtin_image_paths", "builtin_images", "folder_images", "read_rgb"]

# natural photographs and textures among skimage.data's bundled files (charts, masks and tiny files left out)
_SKIMAGE_FILES = (
    "astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "motorcycle_right.png", "rocket.jpg",
    "ihc.png", "hubble_deep_field.jpg", "retina.jpg", "camera.png", "brick.png", "grass.png", "gravel.png",
    "coins.png", "moon.png", "clock_motion.png", "color.png",
)  # fmt: skip
_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8, read by :func:`~varinf.utils.image_io.read_image` (16-bit scaled
    down, EXIF orientation applied, transparency refused); grey is replicated."""
    pixels = read_image(path)
    return np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels


def builtin_images() -> list[np.ndarray]:
    """The sample photographs bundled with scikit-image, scikit-learn and matplotlib (whichever are installed)."""
    return [read_rgb(p) for p in builtin_image_paths()]


def builtin_image_paths() -> list[Path]:
    """The files of :func:`builtin_images`, in its order."""
    paths: list[Path] = []
    try:
        import skimage.data

        root = Path(skimage.data.__file__).parent
        paths += [root / f for f in _SKIMAGE_FILES if (root / f).is_file()]
    except ImportError:
        pass
    try:
        import sklearn.datasets

        root = Path(sklearn.datasets.__file__).parent / "images"
        paths += sorted(root.glob("*.jpg"))
    except ImportError:
        pass
    try:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        paths += [path] if path.is_file() else []
    except ImportError:
        pass
    if not paths:
        raise RuntimeError("no bundled sample images found (install scikit-image) - pass an image folder instead")
    return paths


def folder_images(folder: str | os.PathLike) -> list[np.ndarray]:
    """Every image file under ``folder`` (recursively), as RGB uint8 arrays."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such image folder: {folder}")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in _EXTENSIONS)
    if not paths:
        raise ValueError(f"no images ({', '.join(sorted(_EXTENSIONS))}) under {folder}")
    return [read_rgb(p) for p in paths]


class PatchSampler:
    """Random ``patch_size`` crops with flips/rotations from a pyramid (scales ``scales``) of every image."""

    def __init__(self, images: list[np.ndarray], patch_size: int = 128, scales: tuple[float, ...] = (1.0, 0.75, 0.5)):
        self.patch_size = int(patch_size)
        self.pyramid: list[np.ndarray] = []
        for img in images:
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ValueError(f"images must be (H, W, 3) uint8 arrays (got {img.shape} {img.dtype})")
            for s in scales:
                h, w = round(img.shape[0] * s), round(img.shape[1] * s)
                if min(h, w) < self.patch_size:
                    continue
                scaled = img if s == 1.0 else np.asarray(Image.fromarray(img).resize((w, h), Image.LANCZOS))
                self.pyramid.append(scaled)
        if not self.pyramid:
            raise ValueError(f"no image is at least {self.patch_size} pixels on each side")
        # each picture/scale is drawn with probability ~ sqrt(area): big pictures count more, not overwhelmingly
        area = np.array([p.shape[0] * p.shape[1] for p in self.pyramid], dtype=np.float64)
        self.weights = np.sqrt(area) / np.sqrt(area).sum()

    def sample(self, batch_size: int, rng: np.random.Generator, min_std: float = 0.02) -> torch.Tensor:
        """``(B, 3, P, P)`` float32 patches in [0, 1]; nearly flat patches are redrawn (up to 4 times)."""
        p = self.patch_size
        out = np.empty((batch_size, p, p, 3), dtype=np.uint8)
        for b in range(batch_size):
            for _ in range(5):
                img = self.pyramid[rng.choice(len(self.pyramid), p=self.weights)]
                i = rng.integers(0, img.shape[0] - p + 1)
                j = rng.integers(0, img.shape[1] - p + 1)
                patch = img[i : i + p, j : j + p]
                if patch.std() / 255.0 >= min_std:
                    break
            patch = np.rot90(patch, k=int(rng.integers(4)))
            out[b] = patch[:, ::-1] if rng.random() < 0.5 else patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)
