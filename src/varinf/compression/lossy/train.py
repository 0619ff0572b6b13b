"""Training loop for the lossy codec: Adam on :math:`R + \\lambda D` over random patches, resumable.

Every step draws a batch and a quality level per sample from generators seeded by ``(seed, step)``, so a
run interrupted and resumed from its checkpoint sees exactly the batches it would have seen. Checkpoints
(``checkpoint.safetensors``: weights, Adam state, step, configurations; see
:mod:`varinf.compression.lossy.checkpoint`) are written to a temporary file and renamed, so a crash never leaves a
half-written checkpoint. The learning rate is constant and then decays with a half cosine over the last
``decay_fraction`` of the steps; ``steps`` may be changed when resuming (the schedule follows the new value).
With a time budget the total is planned from the measured pace instead (see :attr:`TrainConfig.time_budget_h`).
``init`` starts a new run from another codec's weights (e.g. a mean-scale model made from the shipped
scale hyperprior by :func:`~varinf.compression.lossy.warm_starts.mean_scale_from_hyperprior`).

Output folder layout: ``checkpoint.safetensors`` (+ ``checkpoint.json``, the same metadata for people),
``train.log`` (one JSON line per ``log_every`` steps) and, at the end, ``model.safetensors`` + ``model.json``
(see :mod:`varinf.compression.lossy.pretrained`).

Example (a few steps of a tiny codec)::

    >>> import tempfile, numpy as np
    >>> from varinf.compression.lossy.model import CodecConfig
    >>> from varinf.compression.lossy.train import TrainConfig, train_codec
    >>> images = [np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)]
    >>> cfg = CodecConfig(channels=8, latent_channels=8, hyper_channels=8, lambdas=(0.01,))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     result = train_codec(cfg, images, d, TrainConfig(steps=2, batch_size=2, patch_size=64), progress=False)
    >>> result.steps
    2
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ...utils import num_threads, seeded
from .checkpoint import load_training_state, read_training_meta, save_training_state
from .model import CodecConfig, ImageCodec, RDLoss, rd_loss
from .patches import PatchSampler
from .pretrained import save_codec

__all__ = ["TrainConfig", "TrainResult", "export_checkpoint", "train_codec"]

CHECKPOINT = "checkpoint.safetensors"


@dataclass(frozen=True)
class TrainConfig:
    """Optimization settings (the architecture lives in :class:`~varinf.compression.lossy.model.CodecConfig`)."""

    steps: int = 20_000
    batch_size: int = 8
    patch_size: int = 128
    lr: float = 3e-4
    decay_fraction: float = 0.25
    final_lr_fraction: float = 0.05
    clip_norm: float = 1.0
    seed: int = 0
    checkpoint_every: int = 250
    log_every: int = 50
    threads: int | None = None
    channels_last: bool = True  # ~10-20% faster convolutions on CPU (oneDNN)
    # from the start of the lr decay on: patches of this size, batch cut to keep the pixels per step
    # (small patches give the hyper transforms a 2x2 z, all border; full images are much larger)
    late_patch_size: int | None = None
    warmup_steps: int = 0  # linear lr warm-up (Adam's first steps are full-size: gentle on a warm start)
    # training-time budget (hours, summed over resumptions): until the lr decay starts, the total number of
    # steps is re-planned at every checkpoint from the measured pace so that the run, decay included, ends
    # within the budget (never above ``steps``); None: exactly ``steps`` steps
    time_budget_h: float | None = None
    # every this many steps, also keep the weights (float16 model folder ``snapshots/step-N``) for checkpoint
    # selection on a validation set; None: only the latest checkpoint
    keep_every: int | None = None
    # train only the latent codec (entropy model: hyper transforms, z prior, context) with the transforms and gains
    # frozen: the loss is then the rate alone (the distortion does not depend on these parameters, whose only
    # gradient in full training is the rate's), and a step skips g_s and g_a's backward pass
    entropy_only: bool = False

    def batch_at(self, step: int) -> tuple[int, int]:
        """``(batch_size, patch_size)`` of ``step``."""
        if self.late_patch_size is None or step < (1.0 - self.decay_fraction) * self.steps:
            return self.batch_size, self.patch_size
        return max(1, round(self.batch_size * (self.patch_size / self.late_patch_size) ** 2)), self.late_patch_size

    def lr_at(self, step: int) -> float:
        start = (1.0 - self.decay_fraction) * self.steps
        if step < start:
            return self.lr * min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else self.lr
        t = (step - start) / max(self.steps - start, 1)
        return self.lr * (self.final_lr_fraction + (1 - self.final_lr_fraction) * 0.5 * (1 + math.cos(math.pi * t)))


LATE_STEP_COST = 1.4  # a 2 x 256^2 step over an 8 x 128^2 step, one CPU thread (same pixels, less cache-friendly)


def planned_steps(train: TrainConfig, step: int, seconds_per_step: float, seconds_left: float) -> int:
    """Total steps that end the run, lr decay included, in ``seconds_left`` from ``step`` at ``seconds_per_step``
    (decay steps cost :data:`LATE_STEP_COST` times more with ``late_patch_size``); at least the total whose
    decay starts now, at most ``train.steps``.

    With :math:`f` the decay fraction and :math:`c` the late cost: :math:`(1 - f) N - s + f N c = T / p`.
    """
    f = train.decay_fraction
    cost = LATE_STEP_COST if train.late_patch_size else 1.0
    n = (seconds_left / seconds_per_step + step) / ((1.0 - f) + f * cost)
    lowest = math.ceil(step / (1.0 - f)) if f < 1 else step
    return int(min(train.steps, max(lowest, n)))


@dataclass
class TrainResult:
    """``steps`` done in total, ``wall_time`` of this call (s), last logged ``bpp``/``psnr`` (patch means)."""

    steps: int
    wall_time: float
    bpp: float
    psnr: float
    model_dir: Path


def _save_checkpoint(path: Path, codec: ImageCodec, optimizer: torch.optim.Optimizer, step: int,
                     train: TrainConfig, **extra) -> None:  # fmt: skip
    meta = {"config": codec.config.to_json(), "train": asdict(train), **extra}
    save_training_state(path, codec, optimizer, step, meta)


def train_codec(
    config: CodecConfig,
    images: list[np.ndarray],
    out_dir: str | os.PathLike,
    train: TrainConfig | None = None,
    progress: bool | None = None,
    until: int | None = None,
    init: ImageCodec | None = None,
    training_files: list[dict] | None = None,
) -> TrainResult:
    """Train (or resume training of) a codec on patches of ``images``; writes into ``out_dir``.

    ``training_files`` (e.g. :meth:`~varinf.compression.lossy.photos.PhotoSet.manifest`: name, SHA-256 of every
    file the images came from) is recorded in the checkpoints and the saved models' metadata.

    ``until`` stops early at that step (checkpoint and model written), e.g. to train in time slices; calling
    again with the same arguments and a larger (or no) ``until`` continues exactly where it stopped.
    ``init`` (a codec with the same ``config``) gives the starting weights of a new run; a run that has a
    checkpoint resumes from it instead.
    """
    train = train or TrainConfig()
    # the caller's thread count and torch's global RNG are restored afterwards (initial weights: seed; the
    # quantization noise of each step: a stream reseeded per step, so a resumed run draws the same noise)
    with num_threads(train.threads or None), seeded(train.seed):
        return _train(config, images, Path(out_dir), train, progress, until, init, training_files)


def _train(
    config: CodecConfig,
    images: list[np.ndarray],
    out: Path,
    train: TrainConfig,
    progress: bool | None,
    until: int | None,
    init: ImageCodec | None,
    training_files: list[dict] | None,
) -> TrainResult:
    out.mkdir(parents=True, exist_ok=True)
    run = _Run.open(config, images, out, train, init, training_files)
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=train.steps, initial=run.step, disable=not show, desc="codec")
    t0, last = time.time(), {"bpp": float("nan"), "psnr": float("nan")}
    run.marks = [(t0, run.step)]  # (time, step) at this process's checkpoints: the pace
    with open(out / "train.log", "a") as log:
        stop = run.total if until is None else min(until, run.total)
        while run.step < stop:
            _step(run)
            bar.update(1)
            if run.step % train.log_every == 0 or run.step == stop:
                last = _log(run, log, bar, t0)
            if run.step % train.checkpoint_every == 0 or run.step == stop:
                stop = _checkpoint(run, until)
            if train.keep_every and run.step % train.keep_every == 0:
                _snapshot(run, out)
    bar.close()
    run.codec.eval()
    save_codec(run.codec, out, info=_info(run))
    return TrainResult(run.step, time.time() - t0, last["bpp"], last["psnr"], out)


@dataclass
class _Run:
    """One training run: the codec, Adam, the patch samplers, where it is, the planned total and the pace."""

    codec: ImageCodec
    optimizer: torch.optim.Optimizer
    samplers: dict
    train: TrainConfig
    ckpt: Path
    files: list = field(default_factory=list)  # the training files' names and SHA-256 (provenance)
    step: int = 0
    total: int = 0  # planned total steps (re-planned under a time budget)
    trained_s: float = 0.0  # training seconds so far, all resumptions
    sched: TrainConfig | None = None  # the lr and patch schedules follow the planned total
    window: list = field(default_factory=list)  # (loss, bpp, mse) since the last log line
    marks: list = field(default_factory=list)
    skipped: int = 0  # updates skipped for a non-finite gradient, in this process

    @classmethod
    def open(cls, config: CodecConfig, images, out: Path, train: TrainConfig, init: ImageCodec | None,
             training_files: list[dict] | None) -> _Run:  # fmt: skip
        """Fresh weights (from the seeded stream, or ``init``), or the checkpoint's state when there is one."""
        samplers = {p: PatchSampler(images, p) for p in {train.patch_size, train.late_patch_size or train.patch_size}}
        codec = ImageCodec(config)  # initial weights from the seeded stream
        if init is not None:
            if init.config.to_json() != config.to_json():
                raise ValueError("init codec has another configuration than the one to train")
            codec.load_state_dict(init.state_dict())
        if train.channels_last:
            codec.to(memory_format=torch.channels_last)
        trained = codec.latent.parameters() if train.entropy_only else codec.parameters()
        run = cls(codec, torch.optim.Adam(trained, lr=train.lr), samplers, train, out / CHECKPOINT,
                  files=training_files or [], total=train.steps)  # fmt: skip
        if (out / "checkpoint.pt").is_file() and not run.ckpt.is_file():
            raise ValueError(f"{out} holds an old pickle checkpoint (checkpoint.pt); resume it with an older varinf")
        if run.ckpt.is_file():
            meta = read_training_meta(run.ckpt)["meta"]
            run.files = training_files or meta.get("training_files", [])
            if meta.get("config") != config.to_json():
                raise ValueError(f"{run.ckpt} was trained with another configuration; use a new output folder")
            run.step = load_training_state(run.ckpt, codec, run.optimizer).step
            run.trained_s = meta.get("train_seconds", 0.0)
            if train.time_budget_h:  # keep the plan made so far (frozen once the decay started); without a budget
                run.total = min(meta.get("planned_steps", train.steps), train.steps)  # ``steps`` rules, as given
        run.sched = replace(train, steps=run.total)
        codec.train()
        return run


def _step(run: _Run) -> None:
    """One step on a batch of patches; a non-finite loss or gradient skips the update instead of poisoning Adam."""
    train, sched, codec = run.train, run.sched, run.codec
    lambdas = torch.tensor(codec.config.lambdas)
    rng = np.random.default_rng([train.seed, run.step])
    torch.manual_seed(train.seed * 1_000_003 + run.step)  # quantization noise (the private stream of seeded())
    batch_size, patch_size = sched.batch_at(run.step)
    x = run.samplers[patch_size].sample(batch_size, rng)
    if train.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    quality = torch.from_numpy(rng.integers(0, len(lambdas), batch_size)).float()
    for group in run.optimizer.param_groups:
        group["lr"] = sched.lr_at(run.step)
    if train.entropy_only:
        result = _rate_loss(codec, x, quality)
    else:
        result = rd_loss(codec(x, quality), x, lambdas[quality.long()])
    run.optimizer.zero_grad(set_to_none=True)
    result.loss.backward()
    norm = torch.nn.utils.clip_grad_norm_([p for g in run.optimizer.param_groups for p in g["params"]],
                                          train.clip_norm)  # fmt: skip
    if torch.isfinite(norm):
        run.optimizer.step()
    else:
        run.skipped += 1
    run.step += 1
    run.window.append((result.loss.item(), result.bpp.mean().item(), result.mse.mean().item()))


def _log(run: _Run, log, bar, t0: float) -> dict:
    """One line of ``train.log`` (means since the last line); the last patches' bpp and PSNR."""
    loss, bpp, mse = (float(v) for v in np.mean(run.window, axis=0))
    last = {"bpp": bpp, "psnr": float(10 * np.log10(1.0 / max(mse, 1e-12)))}
    record = {"step": run.step, "loss": loss, **last, "lr": run.sched.lr_at(run.step - 1),
              "elapsed_s": round(time.time() - t0, 1), "planned_steps": run.total, "skipped": run.skipped}  # fmt: skip
    log.write(json.dumps(record) + "\n")
    log.flush()
    bar.set_postfix(loss=f"{loss:.3f}", bpp=f"{bpp:.3f}", psnr=f"{last['psnr']:.2f}")
    run.window.clear()
    return last


def _checkpoint(run: _Run, until: int | None) -> int:
    """Save the state; under a time budget, re-plan the total from the pace of the last <= 1000 steps. Returns
    where this call stops now."""
    train = run.train
    now = time.time()
    run.trained_s += now - run.marks[-1][0]
    run.marks.append((now, run.step))
    if train.time_budget_h and run.step < (1.0 - train.decay_fraction) * run.total and len(run.marks) > 2:
        (t_a, s_a), (t_b, s_b) = run.marks[max(1, len(run.marks) - 5)], run.marks[-1]
        run.total = planned_steps(
            train, run.step, (t_b - t_a) / (s_b - s_a), train.time_budget_h * 3600 - run.trained_s
        )
        run.sched = replace(train, steps=run.total)
    _save_checkpoint(run.ckpt, run.codec, run.optimizer, run.step, train, planned_steps=run.total,
                     train_seconds=run.trained_s, training_files=run.files)  # fmt: skip
    return run.total if until is None else min(until, run.total)


def _info(run: _Run) -> dict:
    """What a saved model records about its training."""
    return {"train": asdict(run.train), "steps": run.step, "train_seconds": round(run.trained_s),
            "training_files": run.files}  # fmt: skip


def _snapshot(run: _Run, out: Path) -> None:
    """The weights now, as a float16 model folder ``snapshots/step-N`` (for selection on a validation set)."""
    snapshot = copy.deepcopy(run.codec).eval()  # save_codec(half=True) rounds the weights it saves
    save_codec(snapshot, out / "snapshots" / f"step-{run.step:06d}", half=True, info=_info(run))
    run.codec.train()


def _rate_loss(codec: ImageCodec, x: torch.Tensor, quality: torch.Tensor) -> RDLoss:
    """The rate (bpp, minimized) of the latent codec on frozen latents ``g_a(x) * gain``; ``mse`` is NaN."""
    with torch.no_grad():
        y = codec.g_a(x) * codec.gains(quality)[0]
    latent = codec.latent(y)
    bpp = (latent.y_bits + latent.z_bits) / (x.shape[2] * x.shape[3])
    return RDLoss(bpp.mean(), bpp, torch.full_like(bpp, float("nan")))


def export_checkpoint(
    run_dir: str | os.PathLike, out_dir: str | os.PathLike, half: bool = True, info: dict | None = None
) -> ImageCodec:
    """Write the codec of ``run_dir``'s latest checkpoint to ``out_dir`` (``model.safetensors`` + ``model.json``,
    float16 by default) without touching the run; ``info`` is added to the recorded training settings."""
    ckpt = Path(run_dir) / CHECKPOINT
    if not ckpt.is_file():
        raise FileNotFoundError(f"no training checkpoint {ckpt}")
    meta = read_training_meta(ckpt)
    codec = ImageCodec(CodecConfig.from_json(meta["meta"]["config"]))
    step = load_training_state(ckpt, codec).step
    recorded = {"train": meta["meta"].get("train", {}), "steps": step,
                "training_files": meta["meta"].get("training_files", [])}  # fmt: skip
    save_codec(codec.eval(), out_dir, info={**recorded, **(info or {})}, half=half)
    return codec
