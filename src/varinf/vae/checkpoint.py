"""VAE model and checkpoint files, and the trained-model API (:func:`save_vae`, :func:`load_vae`).

A file is a checksummed safetensors archive (:mod:`varinf.utils.safetensors_io`: nothing is ever unpickled;
truncation and silent corruption give a clear error instead of a model with garbage weights) with format tag
``varinf.vae/1`` and JSON ``meta`` (the VAE config for a model file; training progress, optimizer
hyper-parameters and history for a checkpoint). Writes are atomic, so an interrupted save never destroys the
last good file.

Example:
    >>> from varinf.vae import load_vae  # doctest: +SKIP
    >>> vae = load_vae("runs/vae_bin")  # a run folder or its model.safetensors  # doctest: +SKIP
    >>> q, p_z, p_x = vae.q(x), vae.p_z(), vae.p_x(z)  # torch Distributions  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .. import utils
from ..utils import SafetensorsError
from .config import VAEConfig
from .model import VAE

__all__ = [
    "FORMAT",
    "CheckpointError",
    "load_vae",
    "optimizer_state_from_tensors",
    "optimizer_state_to_tensors",
    "read_safetensors",
    "save_vae",
    "write_safetensors",
]

FORMAT = "varinf.vae/1"
MODEL_FILE = "model.safetensors"


# Corrupt, truncated or foreign files, and weights that do not match the model (one error type for users).
CheckpointError = SafetensorsError


def write_safetensors(path: str | os.PathLike, tensors: dict[str, Tensor], meta: dict[str, Any]) -> Path:
    """Atomically write ``tensors`` with JSON ``meta`` and a checksum, tagged as a VAE file."""
    return utils.write_safetensors(path, tensors, meta, format=FORMAT)


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a file written by :func:`write_safetensors`; verify format and checksum."""
    return utils.read_safetensors(path, format=FORMAT)


def load_state(module: torch.nn.Module, tensors: dict[str, Tensor], prefix: str, path: Path) -> None:
    """Load ``prefix``-ed tensors into ``module`` with a clear error on missing/unexpected/mis-shaped weights."""
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    own = module.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    bad = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or bad:
        raise CheckpointError(
            f"{path}: weights do not match the model (missing {missing[:5]}, unexpected {unexpected[:5]}, shapes {bad[:5]})"
        )
    module.load_state_dict(state)


def save_vae(path: str | os.PathLike, vae: VAE) -> Path:
    """Save weights + config to ``path`` (a ``.safetensors`` file, or a folder that gets ``model.safetensors``)."""
    if vae.config is None:
        raise ValueError("only VAEs built with VAE.from_config(config) can be saved (the config rebuilds them)")
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / MODEL_FILE
    tensors = {f"model.{k}": v for k, v in vae.state_dict().items()}
    return write_safetensors(path, tensors, {"kind": "model", "config": vae.config.to_dict()})


def load_vae(path: str | os.PathLike) -> VAE:
    """Rebuild a trained VAE (eval mode) from a run folder or a model/checkpoint ``.safetensors`` file."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    tensors, meta = read_safetensors(path)
    if "config" not in meta:
        raise CheckpointError(f"{path}: no VAE config in its metadata")
    vae = VAE.from_config(VAEConfig.from_dict(meta["config"]))
    load_state(vae, tensors, "model.", path)
    return vae.eval()


def optimizer_state_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors (``optim.<param>.<key>``) and a JSON-able rest."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for key, val in st.items():
            if isinstance(val, Tensor):
                tensors[f"optim.{pid}.{key}"] = val
            else:
                scalars[f"{pid}.{key}"] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_state_from_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor], rest: dict) -> None:
    """Inverse of :func:`optimizer_state_to_tensors` (loads into ``optimizer``)."""
    state: dict[int, dict] = {}
    for name, val in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = val
    for name, val in rest.get("scalars", {}).items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = val
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in rest["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
