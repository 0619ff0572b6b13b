r"""MNIST (LeCun, Cortes & Burges): the four idx files, the 50k/10k/10k split, and binarizations.

Images are kept as ``uint8`` tensors of shape ``(N, 1, 28, 28)`` (values 0..255); models choose how to
read them:

- :func:`dynamic_binarize`: a fresh draw :math:`x_{ij}\sim\mathrm{Bernoulli}(p_{ij}/255)` every time a batch
  is used (Burda et al. 2016, arXiv:1509.00519, train on dynamically binarized MNIST);
- :func:`fixed_binarize`: one draw from a seeded generator (used for the validation/test sets, so every
  model is scored on the same bits);
- the raw 8-bit values, for discretized likelihoods.

The split follows the literature: the first 50,000 training images train, the last 10,000 validate, the
10,000 ``t10k`` images test. :func:`download_mnist` fetches the files for users with internet (mirrors
tried in order, MD5 of the decompressed content checked against the canonical values, atomic writes);
nothing in the library downloads implicitly.

Example:
    >>> from varinf.data import load_mnist  # doctest: +SKIP
    >>> mnist = load_mnist("../shared/data/mnist")  # doctest: +SKIP
    >>> mnist.train.images.shape, mnist.valid.images.shape, mnist.test.images.shape  # doctest: +SKIP
    (torch.Size([50000, 1, 28, 28]), torch.Size([10000, 1, 28, 28]), torch.Size([10000, 1, 28, 28]))
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..utils import atomic_write_bytes
from .idx import read_idx

__all__ = [
    "FILES",
    "MIRRORS",
    "MNIST",
    "ImageSplit",
    "download_mnist",
    "dynamic_binarize",
    "fixed_binarize",
    "load_mnist",
]

# canonical file name -> MD5 of the *decompressed* idx bytes (robust to re-gzipping)
FILES = {
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


@dataclass(frozen=True)
class ImageSplit:
    """One split: ``images`` uint8 ``(N, C, H, W)``, ``labels`` int64 ``(N,)`` (or None)."""

    images: Tensor
    labels: Tensor | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def head(self, n: int) -> ImageSplit:
        """The first ``n`` examples (for quick runs and subset evaluations)."""
        return ImageSplit(self.images[:n], None if self.labels is None else self.labels[:n])


@dataclass(frozen=True)
class MNIST:
    """The 50k/10k/10k split of MNIST."""

    train: ImageSplit
    valid: ImageSplit
    test: ImageSplit


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _content(data: bytes) -> bytes:
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def download_mnist(
    root: str | os.PathLike,
    mirrors: tuple[str, ...] = MIRRORS,
    force: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Download the four MNIST files into ``root`` (created if needed); returns ``root``.

    Files already present with the right checksum are kept (unless ``force``). Each download is checked
    (MD5 of the decompressed idx bytes against :data:`FILES`) before it is atomically renamed into place,
    so an interrupted or corrupted download never leaves a file that looks valid.

    Raises:
        RuntimeError: a file could not be fetched with a valid checksum from any mirror (all attempts listed).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for name, md5 in FILES.items():
        dest = root / name
        if dest.is_file() and not force and _md5(_content(dest.read_bytes())) == md5:
            continue
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name
            try:
                with urllib.request.urlopen(url, timeout=timeout) as r:
                    data = r.read()
                got = _md5(_content(data))
            except (urllib.error.URLError, OSError, EOFError, ValueError) as e:
                errors.append(f"{url}: {e}")
                continue
            if got != md5:
                errors.append(f"{url}: checksum mismatch (md5 {got}, expected {md5})")
                continue
            atomic_write_bytes(dest, data)
            break
        else:
            raise RuntimeError(f"could not download {name}:\n  " + "\n  ".join(errors))
    return root


def _find(root: Path, name: str) -> Path:
    for cand in (root / name, root / name.removesuffix(".gz")):
        if cand.is_file():
            return cand
    raise FileNotFoundError(
        f"{root}: missing {name} (or its uncompressed form); pass download=True to fetch MNIST "
        f"or point to a folder holding the four idx files"
    )


def load_mnist(root: str | os.PathLike, download: bool = False, valid_size: int = 10_000) -> MNIST:
    """Read MNIST from the idx(.gz) files in ``root``: train = first ``60000 - valid_size`` training
    images, valid = the remaining ``valid_size``, test = the t10k set.

    Args:
        root: folder holding ``train-images-idx3-ubyte.gz`` etc. (gzipped or not).
        download: fetch missing files with :func:`download_mnist` first (needs internet).
        valid_size: size of the validation split carved from the end of the training file.
    """
    root = Path(root)
    if download:
        download_mnist(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MNIST folder not found: {root} (pass download=True to fetch MNIST)")
    arrays = {n: read_idx(_find(root, n)) for n in FILES}
    xtr, ytr = arrays["train-images-idx3-ubyte.gz"], arrays["train-labels-idx1-ubyte.gz"]
    xte, yte = arrays["t10k-images-idx3-ubyte.gz"], arrays["t10k-labels-idx1-ubyte.gz"]
    for x, y, split in ((xtr, ytr, "train"), (xte, yte, "t10k")):
        if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise ValueError(f"{root}: {split} images {x.shape} and labels {y.shape} do not match")
    if not 0 <= valid_size < xtr.shape[0]:
        raise ValueError(f"valid_size must be in [0, {xtr.shape[0]}), got {valid_size}")

    def split(x: np.ndarray, y: np.ndarray) -> ImageSplit:
        return ImageSplit(torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype(np.int64)))

    n = xtr.shape[0] - valid_size
    return MNIST(train=split(xtr[:n], ytr[:n]), valid=split(xtr[n:], ytr[n:]), test=split(xte, yte))


def dynamic_binarize(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    r"""Fresh binarization :math:`x\sim\mathrm{Bernoulli}(\text{images}/255)` as float {0, 1}, same shape."""
    if images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images (0..255), got {images.dtype}")
    return torch.bernoulli(images.float() / 255.0, generator=generator)


def fixed_binarize(images: Tensor, seed: int = 0) -> Tensor:
    """One reproducible binarization of ``images`` (a fixed ``torch.Generator`` seeded with ``seed``)."""
    return dynamic_binarize(images, torch.Generator().manual_seed(seed))
