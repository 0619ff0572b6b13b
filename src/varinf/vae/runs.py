"""Work on a finished (or running) run folder: evaluate it, draw its pictures. The CLI's library side.

Example:
    >>> from varinf.vae.runs import evaluate_run, plot_run  # doctest: +SKIP
    >>> ev = evaluate_run("runs/vae_bin", k=5000)  # doctest: +SKIP
    >>> plot_run("runs/vae_bin")  # samples.png, reconstructions.png, latent_map.png, history.png  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..utils import atomic_write_text
from .checkpoint import load_vae
from .config import VAEConfig
from .datasets import DataSpec
from .evaluation import Evaluation, evaluate
from .model import VAE
from .plots import plot_history, plot_latent_map, plot_reconstructions, plot_samples
from .train_config import TrainConfig, TrainResult, ValidationRecord
from .training import train

__all__ = ["Run", "evaluate_run", "load_run", "plot_run", "train_run"]

TEST_SEED = 0  # the fixed binarization / dequantization of evaluation images


@dataclass(frozen=True)
class Run:
    """A run folder's trained model, recorded data source and validation history."""

    path: Path
    vae: VAE
    data: DataSpec | None
    history: list[ValidationRecord]


def load_run(path: str | os.PathLike) -> Run:
    path = Path(path)
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{path}: no model.safetensors (not a training run folder, or nothing saved yet)")
    cfg = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
    hist_file = path / "history.json"
    history = [ValidationRecord(**r) for r in json.loads(hist_file.read_text())] if hist_file.is_file() else []
    data = DataSpec.from_dict(cfg["data"]) if cfg.get("data") else None
    return Run(path, load_vae(path), data, history)


def _data(run: Run, data: DataSpec | None) -> DataSpec:
    spec = data or run.data
    if spec is None:
        raise ValueError(f"{run.path}: no data source recorded; pass one (--data)")
    return spec


def evaluate_run(
    path: str | os.PathLike,
    data: DataSpec | None = None,
    split: str = "test",
    k: int = 5000,
    limit: int | None = None,
    batch_size: int = 100,
    seed: int = 0,
    progress: bool | None = None,
) -> Evaluation:
    """Importance-sampled NLL, rate and distortion on a split; also written to ``<run>/eval_<split>.json``."""
    run = load_run(path)
    if split not in ("train", "valid", "test"):
        raise ValueError(f"split must be train, valid or test, got {split!r}")
    images = getattr(_data(run, data).load(), split).images[:limit]
    if len(images) == 0:
        raise ValueError(f"the {split} split is empty")
    x = run.vae.likelihood.prepare(images, torch.Generator().manual_seed(TEST_SEED))
    ev = evaluate(run.vae, x, k=k, batch_size=batch_size, seed=seed, progress=progress)
    atomic_write_text(run.path / f"eval_{split}.json", json.dumps(ev.to_dict(), indent=2) + "\n")
    return ev


def plot_run(
    path: str | os.PathLike, data: DataSpec | None = None, out: str | os.PathLike | None = None, seed: int = 0
) -> list[Path]:
    """Samples, reconstructions and latent map (test images) and the validation history, as PNGs in ``out``
    (default: the run folder); ``seed`` draws the samples and the reconstructions' latents."""
    run = load_run(path)
    out = Path(out) if out is not None else run.path
    out.mkdir(parents=True, exist_ok=True)
    test = _data(run, data).load().test
    written = [
        plot_samples(run.vae, out / "samples.png", seed=seed),
        plot_reconstructions(run.vae, test.images, out / "reconstructions.png", seed=seed),
        plot_latent_map(run.vae, test.images, test.labels, out / "latent_map.png"),
    ]
    if run.history:
        written.append(plot_history(run.history, out / "history.png"))
    return written


def train_run(
    path: str | os.PathLike,
    vae_config: VAEConfig | None = None,
    config: TrainConfig | None = None,
    data: DataSpec | None = None,
    resume: bool = False,
    force: bool = False,
    stops: dict | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Load the data described by ``data`` and :func:`~varinf.vae.train` on it.

    On ``resume`` the configuration (and, unless given, the data source) come from the run folder;
    ``stops`` may override ``epochs``, ``max_steps`` and ``cpu_budget_s`` (``None`` values are ignored).
    """
    path = Path(path)
    if resume:
        cfg_file = path / "config.json"
        if not cfg_file.is_file():
            raise FileNotFoundError(f"nothing to resume: {cfg_file} does not exist")
        saved = json.loads(cfg_file.read_text())
        config = dataclasses.replace(
            TrainConfig.from_dict(saved["train"]), **{k: v for k, v in (stops or {}).items() if v is not None}
        )
        if data is None and saved.get("data"):
            data = DataSpec.from_dict(saved["data"])
    if data is None:
        raise ValueError("no data source: pass a DataSpec (--data PATH)")
    splits = data.load()
    return train(
        path,
        vae_config,
        config,
        splits.train.images,
        splits.valid.images,
        mode="resume" if resume else "overwrite" if force else "new",
        data_spec=data.to_dict(),
        progress=progress,
    )
