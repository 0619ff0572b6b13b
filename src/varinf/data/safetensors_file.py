"""Safetensors files with JSON metadata and a checksum, written atomically: the one helper for saving tensors.

A file is a safetensors archive whose header metadata holds

- ``format``: what kind of file it is (``varinf.vae/1``, ``varinf.fit/1``, ...), checked on read;
- ``meta``: JSON (configuration, results, provenance);
- ``sha256``: digest of every tensor's name, dtype, shape and bytes, checked on load, so truncation
  *and* silent corruption of the data give a clear error instead of garbage values.

Nothing is ever unpickled. Writes go to a temporary file, are fsynced and renamed into place, so an
interrupted save never destroys the last good file.
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

from .idx import atomic_write_bytes

__all__ = ["CheckpointError", "read_safetensors", "write_safetensors"]


class CheckpointError(ValueError):
    """A saved file (checkpoint, model, fit) is unreadable, corrupt, or does not match what it is loaded into."""


def _digest(tensors: dict[str, Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def write_safetensors(
    path: str | os.PathLike, tensors: dict[str, Tensor], meta: dict[str, Any], format: str = "varinf.vae/1"
) -> Path:
    """Atomically write ``tensors`` with JSON ``meta``, a ``format`` tag and a checksum."""
    tensors = {k: v.detach().contiguous().cpu().clone() for k, v in tensors.items()}
    metadata = {"format": format, "meta": json.dumps(meta), "sha256": _digest(tensors)}
    path = Path(path)
    atomic_write_bytes(path, st_save(tensors, metadata=metadata))
    return path


def _header(data: bytes, path: Path) -> dict:
    if len(data) < 8:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint (header of {n} bytes, file {len(data)})")
    try:
        return json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt checkpoint header ({e})") from None


def read_safetensors(
    path: str | os.PathLike, format: str = "varinf.vae/1", what: str = "VAE"
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a file written by :func:`write_safetensors`; verify its ``format`` (a varinf ``what`` file) and checksum."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint: {path}")
    data = path.read_bytes()
    meta = _header(data, path).get("__metadata__") or {}
    if meta.get("format") != format:
        raise CheckpointError(f"{path}: not a varinf {what} file (format {meta.get('format')!r}, expected {format!r})")
    try:
        tensors = st_load(data)
    except Exception as e:  # safetensors raises its own error types for malformed data
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({e})") from None
    if _digest(tensors) != meta.get("sha256"):
        raise CheckpointError(
            f"{path}: checksum mismatch, the file is corrupt (tensor data changed since it was saved)"
        )
    try:
        return tensors, json.loads(meta["meta"])
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt metadata ({e})") from None
