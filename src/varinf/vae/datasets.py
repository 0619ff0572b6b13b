"""Where training images come from, as a JSON-able value (stored in a run's config.json so it can resume).

``DataSpec(path)`` is MNIST if ``path`` holds the idx files (50k/10k/10k split), otherwise a folder of
images (:func:`varinf.data.load_image_folder`) split by ``valid_fraction``/``test_fraction`` in file order.

Example:
    >>> from varinf.vae.datasets import DataSpec  # doctest: +SKIP
    >>> splits = DataSpec("../shared/data/mnist").load()  # doctest: +SKIP
    >>> splits.train.images.shape  # doctest: +SKIP
    torch.Size([50000, 1, 28, 28])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..data import MNIST, ImageSplit, load_image_folder, load_mnist

__all__ = ["DataSpec"]


def _is_mnist(path: Path) -> bool:
    return any((path / n).is_file() for n in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"))


@dataclass(frozen=True)
class DataSpec:
    """Args:
    path: MNIST folder (idx files) or image folder.
    kind: ``"auto"``, ``"mnist"`` or ``"folder"``.
    limit: use only the first ``limit`` training images (quick runs).
    download: fetch MNIST into ``path`` if missing (needs internet).
    image_size, mode: for image folders (square crop + resize; ``"L"`` or ``"RGB"``).
    valid_fraction, test_fraction: image-folder split (the last files are test, the ones before valid).
    """

    path: str
    kind: str = "auto"
    limit: int | None = None
    download: bool = False
    image_size: int | None = None
    mode: str = "L"
    valid_fraction: float = 0.1
    test_fraction: float = 0.1

    def resolved_kind(self) -> str:
        if self.kind != "auto":
            return self.kind
        p = Path(self.path)
        return "mnist" if (self.download or _is_mnist(p)) else "folder"

    def load(self) -> MNIST:
        """Train/valid/test splits (uint8 ``(N, C, H, W)``)."""
        kind = self.resolved_kind()
        if kind == "mnist":
            data = load_mnist(self.path, download=self.download)
        elif kind == "folder":
            images = load_image_folder(self.path, size=self.image_size, mode=self.mode).images
            n = images.shape[0]
            n_test, n_valid = int(n * self.test_fraction), int(n * self.valid_fraction)
            n_train = n - n_test - n_valid
            if n_train < 1:
                raise ValueError(f"{self.path}: {n} images leave none for training after the valid/test split")
            data = MNIST(
                train=ImageSplit(images[:n_train]),
                valid=ImageSplit(images[n_train : n_train + n_valid]),
                test=ImageSplit(images[n_train + n_valid :]),
            )
        else:
            raise ValueError(f"unknown data kind {self.kind!r}; use auto, mnist or folder")
        if self.limit is not None:
            data = MNIST(train=data.train.head(self.limit), valid=data.valid, test=data.test)
        return data

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DataSpec:
        return cls(**d)
