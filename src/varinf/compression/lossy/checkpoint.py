"""Training checkpoints as one ``.safetensors`` file (never pickle): weights, optimizer state and JSON metadata.

Layout of the file: tensors ``model.<name>`` (the ``state_dict``) and ``optimizer.<param index>.<key>``
(per-parameter optimizer tensors, e.g. Adam's ``exp_avg``, ``exp_avg_sq``, ``step``); the safetensors header
metadata (:func:`varinf.utils.write_safetensors`, format ``varinf.codec-train/1``, checksummed) holds one JSON
document with the step, the optimizer's ``param_groups`` and any caller ``meta`` (configurations). A copy of
that JSON is written next to the file for people (``<name>.json``); loading only reads the ``.safetensors``
file. Writes are atomic, so an interrupted write leaves the previous checkpoint intact.

Example::

    >>> import tempfile, torch
    >>> from varinf.compression.lossy.checkpoint import load_training_state, save_training_state
    >>> net = torch.nn.Linear(2, 2); opt = torch.optim.Adam(net.parameters())
    >>> net(torch.ones(1, 2)).sum().backward(); opt.step()
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = save_training_state(f"{d}/ckpt.safetensors", net, opt, step=1, meta={"note": "demo"})
    ...     state = load_training_state(f"{d}/ckpt.safetensors", net, opt)
    >>> state.step, state.meta["note"]
    (1, 'demo')
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ...utils import SafetensorsError, atomic_write_text, read_safetensors, write_safetensors

__all__ = ["TrainingState", "load_training_state", "read_training_meta", "save_training_state"]

FORMAT = "varinf.codec-train/1"


@dataclass
class TrainingState:
    """``step`` reached and the caller's ``meta`` dict, as saved."""

    step: int
    meta: dict


def save_training_state(
    path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, meta: dict | None = None
) -> Path:
    """Write ``model`` and ``optimizer`` state at ``step`` to ``path`` (atomically) and ``path`` .json."""
    path = Path(path)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    scalars: dict[str, dict] = {}
    for index, entry in opt["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    doc = {"step": int(step), "param_groups": opt["param_groups"], "scalars": scalars, "meta": meta or {}}
    write_safetensors(path, tensors, doc, format=FORMAT)
    atomic_write_text(path.with_suffix(".json"), json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path


def _read(path: str | os.PathLike) -> tuple[dict, dict]:
    try:
        return read_safetensors(path, format=FORMAT)
    except SafetensorsError as e:
        raise ValueError(f"not a varinf training checkpoint: {e}") from None


def read_training_meta(path: str | os.PathLike) -> dict:
    """The JSON document stored in a checkpoint (step, param_groups, meta)."""
    return _read(path)[1]


def load_training_state(
    path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> TrainingState:
    """Restore ``model`` (and ``optimizer``) in place from ``path``; returns the step and meta."""
    tensors, doc = _read(path)
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not fit this model ({str(e).splitlines()[0]})") from None
    if optimizer is not None:
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value
        for index, entry in doc["scalars"].items():
            state.setdefault(int(index), {}).update(entry)
        optimizer.load_state_dict({"state": state, "param_groups": doc["param_groups"]})
    return TrainingState(int(doc["step"]), doc["meta"])
