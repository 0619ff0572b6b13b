"""The idx file format of MNIST (LeCun et al.): a big-endian header then raw array bytes.

Layout: two zero bytes, a type code (``0x08`` = unsigned byte, the only one MNIST uses), the number of
dimensions ``n``, then ``n`` big-endian uint32 sizes, then the data in C order. Files may be gzipped
(``.gz``, detected from the magic bytes, not the name).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from ..utils import atomic_write_bytes

__all__ = ["decode_idx", "encode_idx", "read_idx", "write_idx"]

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08


def decode_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse idx bytes (gzipped or not) into a read-only ``uint8`` array; ``name`` appears in errors."""
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise ValueError(f"{name}: corrupt gzip stream ({e})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{name}: not an idx file (bad magic {data[:4].hex() or 'empty'})")
    if data[2] != _UBYTE:
        raise ValueError(f"{name}: idx type code 0x{data[2]:02x} is not unsigned byte (0x08)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated idx header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != expected:
        raise ValueError(f"{name}: idx header says shape {shape} ({expected} bytes) but {len(data) - header} follow")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an idx or idx.gz file into a ``uint8`` array of the shape in its header."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such idx file: {path}")
    return decode_idx(path.read_bytes(), str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """idx bytes (uncompressed) for a ``uint8`` array."""
    a = np.ascontiguousarray(array)
    if a.dtype != np.uint8:
        raise ValueError(f"idx encoding supports uint8 only, got {a.dtype}")
    header = bytes([0, 0, _UBYTE, a.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in a.shape)
    return header + a.tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as idx, gzipped when ``path`` ends in ``.gz``; atomic (temp file + rename)."""
    path = Path(path)
    data = encode_idx(array)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(path, data)
    return path
