"""Data loaders (see README.md here). Images are uint8 tensors ``(N, C, H, W)``; nothing downloads implicitly.

Only the image loaders are imported here; other loaders in this package (text corpora, posteriordb) are
imported from their own modules so that importing ``varinf.data`` stays cheap.
"""

from .idx import read_idx, write_idx
from .images import load_image_folder
from .mnist import MNIST, ImageSplit, download_mnist, dynamic_binarize, fixed_binarize, load_mnist

__all__ = [
    "MNIST",
    "ImageSplit",
    "download_mnist",
    "dynamic_binarize",
    "fixed_binarize",
    "load_image_folder",
    "load_mnist",
    "read_idx",
    "write_idx",
]
