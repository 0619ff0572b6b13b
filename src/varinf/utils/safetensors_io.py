"""Safetensors files with JSON metadata and a checksum, written atomically. Nothing is ever unpickled.

A file is a plain safetensors archive whose header metadata holds

- ``format``: a string naming what the file holds (e.g. ``varinf.vae/1``), checked on load;
- ``meta``: any JSON-able dict (a config, training progress, ...);
- ``sha256``: digest of every tensor's name, dtype, shape and bytes, checked on load, so truncation *and*
  silent corruption of the data give a one-line error naming the file instead of garbage weights.

Example::

    >>> import tempfile, pathlib, torch
    >>> from varinf.utils import read_safetensors, write_safetensors
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "w.safetensors"
    >>> _ = write_safetensors(path, {"w": torch.ones(2)}, {"step": 3}, format="demo/1")
    >>> tensors, meta = read_safetensors(path, format="demo/1")
    >>> tensors["w"].tolist(), meta
    ([1.0, 1.0], {'step': 3})
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor

from .files import atomic_write_bytes

__all__ = ["SafetensorsError", "read_safetensors", "tensor_digest", "write_safetensors"]


class SafetensorsError(ValueError):
    """A safetensors file is unreadable, corrupt, of another format, or does not match the model."""


def tensor_digest(tensors: dict[str, Tensor]) -> str:
    """SHA-256 (hex) of every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def write_safetensors(
    path: str | os.PathLike, tensors: dict[str, Tensor], meta: dict[str, Any], *, format: str
) -> Path:
    """Atomically write ``tensors`` (moved to CPU) with JSON ``meta``, the ``format`` tag and a checksum."""
    tensors = {k: v.detach().contiguous().cpu().clone() for k, v in tensors.items()}
    metadata = {"format": format, "meta": json.dumps(meta), "sha256": tensor_digest(tensors)}
    return atomic_write_bytes(path, st_save(tensors, metadata=metadata))


def _header(data: bytes, path: Path, what: str) -> dict:
    if len(data) < 8:
        raise SafetensorsError(f"{path}: corrupt or truncated {what} ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise SafetensorsError(f"{path}: corrupt or truncated {what} (header of {n} bytes, file {len(data)})")
    try:
        return json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: corrupt {what} header ({e})") from None


def read_safetensors(
    path: str | os.PathLike, *, format: str, what: str = "checkpoint"
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a file written by :func:`write_safetensors` with the same ``format``; verify it and the checksum.

    Returns ``(tensors, meta)``. Raises ``FileNotFoundError`` for a missing file and
    :class:`SafetensorsError` for a corrupt, truncated or foreign one; messages call the file a ``what``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such {what}: {path}")
    data = path.read_bytes()
    meta = _header(data, path, what).get("__metadata__") or {}
    if meta.get("format") != format:
        raise SafetensorsError(f"{path}: not a {format!r} file (its format is {meta.get('format')!r})")
    try:
        tensors = st_load(data)
    except Exception as e:  # safetensors raises its own error types for malformed data
        raise SafetensorsError(f"{path}: corrupt or truncated {what} ({e})") from None
    if tensor_digest(tensors) != meta.get("sha256"):
        raise SafetensorsError(
            f"{path}: checksum mismatch, the file is corrupt (tensor data changed since it was saved)"
        )
    try:
        return tensors, json.loads(meta["meta"])
    except (KeyError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: corrupt metadata ({e})") from None
