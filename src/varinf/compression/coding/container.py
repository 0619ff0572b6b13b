"""The ``.vif`` container: a small, strictly validated envelope around an ANS payload.

Layout (little-endian)::

    offset  size  field
    0       4     magic  b"\\x89VIF"   (0x89: a file mangled by text-mode transfer fails at once)
    4       1     format version (1)
    5       1     kind: 1 = lossy image (learned transform codec), 2 = lossless (bits-back), ...
    6       2     meta length L (<= 1024)
    8       8     model id (SHA-256 prefix of the model's config and weights)
    16      4     table digest (CRC32 of the integer coding tables the payload was written with)
    20      L     meta: kind-specific fixed fields (e.g. image shape, quality)
    20+L    4     payload length P in bytes (a multiple of 4: uint32 ANS words)
    24+L    P     payload
    24+L+P  4     CRC32 of every preceding byte

:func:`read_container` checks the magic, version, lengths and CRC *before* anything is allocated or
decoded, so a corrupted, truncated or foreign file yields a :class:`FormatError` naming the problem.
Sizes are checked against the bytes actually present, never trusted.

Example::

    >>> import numpy as np
    >>> from varinf.compression.coding.container import Container, read_container
    >>> blob = Container(1, b"ABCDEFGH", 7, b"meta", np.array([1, 2], np.uint32)).to_bytes()
    >>> read_container(blob).payload.tolist()
    [1, 2]
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "KIND_LOSSLESS",
    "KIND_LOSSY_IMAGE",
    "MAGIC",
    "Container",
    "FormatError",
    "file_kind",
    "read_container",
    "read_vif_bytes",
]

MAGIC = b"\x89VIF"
FORMAT_VERSION = 1
KIND_LOSSY_IMAGE = 1
KIND_LOSSLESS = 2
_KINDS = {KIND_LOSSY_IMAGE: "lossy image", KIND_LOSSLESS: "lossless (bits-back)"}
_HEAD = struct.Struct("<4sBBH8sI")  # magic, version, kind, meta length, model id, table digest
MAX_META = 1024


class FormatError(ValueError):
    """The bytes are not a valid ``.vif`` file (wrong magic, version, lengths or checksum)."""


@dataclass(frozen=True, eq=False)
class Container:
    """One ``.vif`` file: ``kind``, ``model_id`` (8 bytes), ``table_digest``, ``meta`` bytes, uint32 ``payload``."""

    kind: int
    model_id: bytes
    table_digest: int
    meta: bytes
    payload: np.ndarray

    def to_bytes(self) -> bytes:
        if len(self.model_id) != 8:
            raise ValueError("model_id must be 8 bytes")
        if len(self.meta) > MAX_META:
            raise ValueError(f"meta is limited to {MAX_META} bytes")
        words = np.ascontiguousarray(self.payload, dtype="<u4").tobytes()
        body = b"".join((
            _HEAD.pack(MAGIC, FORMAT_VERSION, self.kind, len(self.meta), self.model_id, self.table_digest),
            self.meta, struct.pack("<I", len(words)), words,
        ))  # fmt: skip
        return body + struct.pack("<I", zlib.crc32(body))

    @property
    def num_bytes(self) -> int:
        """Size of the encoded file."""
        return _HEAD.size + len(self.meta) + 4 + 4 * int(self.payload.size) + 4


def read_container(data: bytes, expect_kind: int | None = None) -> Container:
    """Parse and validate a ``.vif`` file; raises :class:`FormatError` on any inconsistency."""
    data = bytes(data)
    if len(data) < _HEAD.size + 8:
        if not data.startswith(MAGIC[: len(data)]) or not data:
            raise FormatError("not a .vif file (too short, wrong magic)")
        raise FormatError(f"truncated .vif file ({len(data)} bytes)")
    magic, version, kind, meta_len, model_id, digest = _HEAD.unpack_from(data, 0)
    if magic != MAGIC:
        raise FormatError("not a .vif file (wrong magic bytes)")
    if version != FORMAT_VERSION:
        raise FormatError(f"unsupported .vif format version {version} (this varinf reads version {FORMAT_VERSION})")
    if kind not in _KINDS:
        raise FormatError(f"unknown .vif content kind {kind}")
    if expect_kind is not None and kind != expect_kind:
        raise FormatError(f"this file holds a {_KINDS[kind]} stream, expected {_KINDS[expect_kind]}")
    if meta_len > MAX_META:
        raise FormatError(f"corrupt header (meta length {meta_len})")
    pos = _HEAD.size + meta_len
    if len(data) < pos + 8:
        raise FormatError(f"truncated .vif file ({len(data)} bytes, header alone needs {pos + 8})")
    (payload_len,) = struct.unpack_from("<I", data, pos)
    expected = pos + 4 + payload_len + 4
    if len(data) < expected:
        raise FormatError(f"truncated .vif file ({len(data)} of {expected} bytes)")
    if len(data) > expected:
        raise FormatError(f"corrupt .vif file ({len(data) - expected} unexpected trailing bytes)")
    if payload_len % 4:
        raise FormatError(f"corrupt header (payload length {payload_len} is not a multiple of 4)")
    (crc,) = struct.unpack_from("<I", data, expected - 4)
    if zlib.crc32(memoryview(data)[: expected - 4]) != crc:
        raise FormatError("corrupt .vif file (CRC32 mismatch)")
    payload = np.frombuffer(data, dtype="<u4", count=payload_len // 4, offset=pos + 4).astype(np.uint32)
    return Container(kind, model_id, digest, data[_HEAD.size : pos], payload)


def file_kind(path) -> int:
    """The content kind of a ``.vif`` file (1 lossy image, 2 lossless) from its first 6 bytes; FormatError if
    it is not one (the full validation happens when it is decoded)."""
    with open(path, "rb") as f:
        head = f.read(6)
    if len(head) < 6 or head[:4] != MAGIC:
        raise FormatError(f"{path}: not a .vif file (wrong magic bytes or too short)")
    if head[5] not in _KINDS:
        raise FormatError(f"{path}: unknown .vif content kind {head[5]}")
    return head[5]


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
