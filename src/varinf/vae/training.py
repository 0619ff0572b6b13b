r"""Train a VAE: minibatch steps on the core objectives, periodic validation, resumable checkpoints.

A run folder holds

- ``config.json``: VAE, training and data configuration (written once, atomically);
- ``checkpoint.safetensors``: weights, Adam state, both RNG states (torch's global generator, which draws
  the reparameterization noise, and the data generator, which draws permutations and binarizations), the
  epoch's permutation and position, and the history: resuming continues *exactly* where the run stopped,
  so a resumed run equals an uninterrupted one with the same seed;
- ``model.safetensors``: weights + VAE config, for :func:`varinf.vae.load_vae`;
- ``history.json``: one record per validation.

Validation uses a forked, fixed-seed RNG, so how often it runs never changes training. Training time is
measured as process CPU time and wall time spent in training steps (validation and saving excluded).
Runs under ``torchrun`` split each batch over processes (see :mod:`.distributed`); process 0 validates and saves.

Example:
    >>> from varinf.vae import TrainConfig, VAEConfig, train  # doctest: +SKIP
    >>> result = train("runs/demo", VAEConfig.preset("iwae1"), TrainConfig(objective="iwae", k=5, epochs=2),
    ...                mnist.train.images, mnist.valid.images)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from ..utils import atomic_write_text, seeded
from ..utils.progress_bars import progress as progress_bar
from .checkpoint import (
    load_state,
    optimizer_state_from_tensors,
    optimizer_state_to_tensors,
    read_safetensors,
    save_vae,
    write_safetensors,
)
from .config import VAEConfig
from .distributed import Shard, World, init_distributed
from .evaluation import evaluate
from .model import VAE
from .objectives import make_objective
from .schedule import learning_rate
from .train_config import Progress, TrainConfig, TrainResult, ValidationRecord

__all__ = ["TrainConfig", "TrainResult", "ValidationRecord", "train"]

CHECKPOINT, CONFIG, HISTORY = "checkpoint.safetensors", "config.json", "history.json"
_VALID_SEED = 1234  # fixed binarization of the validation images


def _write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def _save(run: Path, vae: VAE, opt: torch.optim.Optimizer, gen: torch.Generator, perm: Tensor, prog: Progress):
    tensors = {f"model.{k}": v for k, v in vae.state_dict().items()}
    opt_tensors, opt_rest = optimizer_state_to_tensors(opt)
    tensors.update(opt_tensors)
    tensors.update({"rng.torch": torch.get_rng_state(), "rng.data": gen.get_state(), "data.perm": perm})
    meta = {"kind": "checkpoint", "config": vae.config.to_dict(), "progress": prog.to_dict(), "optimizer": opt_rest}
    write_safetensors(run / CHECKPOINT, tensors, meta)
    save_vae(run, vae)
    _write_json(run / HISTORY, [r.to_dict() for r in prog.history])


def _restore(run: Path, vae: VAE, opt: torch.optim.Optimizer, gen: torch.Generator) -> tuple[Tensor, Progress]:
    path = run / CHECKPOINT
    tensors, meta = read_safetensors(path)
    load_state(vae, tensors, "model.", path)
    try:
        optimizer_state_from_tensors(opt, tensors, meta["optimizer"])
        torch.set_rng_state(tensors["rng.torch"])
        gen.set_state(tensors["rng.data"])
        return tensors["data.perm"], Progress.from_dict(meta["progress"])
    except (KeyError, ValueError, RuntimeError) as e:
        raise ValueError(f"{path}: incomplete or mismatched training state ({e})") from None


MODES = ("new", "resume", "overwrite")


def _start(run: Path, vae_config, config, data_spec, mode: str, world: World):
    """Decide the configs of this run (fresh or resumed) and write config.json."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    cfg_path = run / CONFIG
    if mode == "resume":
        if not (run / CHECKPOINT).is_file():
            raise FileNotFoundError(f"nothing to resume: {run / CHECKPOINT} does not exist")
        saved = json.loads(cfg_path.read_text())
        old = TrainConfig.from_dict(saved["train"])
        # only the stopping criteria may change on resume: everything else defines the run
        stops = {f: getattr(config, f) for f in ("epochs", "max_steps", "cpu_budget_s")} if config else {}
        config = dataclasses.replace(old, **stops)
        return VAEConfig.from_dict(saved["vae"]), config, saved.get("data", {})
    if (run / CHECKPOINT).exists() and mode != "overwrite":
        raise ValueError(f"{run} already holds a run; resume it (--resume) or pass mode='overwrite' (--force) to "
                         "overwrite")  # fmt: skip
    if vae_config is None or config is None:
        raise ValueError("a fresh run needs a VAEConfig and a TrainConfig")
    if world.is_main:
        run.mkdir(parents=True, exist_ok=True)
        _write_json(cfg_path, {"vae": vae_config.to_dict(), "train": config.to_dict(), "data": data_spec or {}})
    return vae_config, config, data_spec


def train(
    run_dir: str | Path,
    vae_config: VAEConfig | None,
    config: TrainConfig | None,
    train_images: Tensor,
    valid_images: Tensor | None = None,
    mode: str = "new",
    data_spec: dict | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Train a VAE on uint8 ``train_images`` ``(N, *data_shape)`` in the folder ``run_dir``.

    ``mode``: ``"new"`` (the folder must not hold a run), ``"overwrite"`` (replace the run there) or
    ``"resume"`` (configs are read from the run folder and only the stopping criteria of ``config`` apply).
    ``data_spec`` is stored in config.json (the CLI records where the images came from). ``progress``: a
    progress bar and one line per validation on stdout (``None``: the bar only on a terminal; ``False``:
    silent). All randomness comes from a private stream seeded with ``config.seed`` (torch's global RNG is left
    as it was), restored exactly on resume.
    """
    run, world = Path(run_dir), init_distributed()
    vae_config, config, data_spec = _start(run, vae_config, config, data_spec, mode, world)
    _check_images(train_images, vae_config, config.batch_size)
    with seeded(config.seed):
        s = _Session.open(run, vae_config, config, world, train_images.shape[0], resume=mode == "resume")
        if valid_images is not None and len(valid_images):
            s.valid_x = s.vae.likelihood.prepare(valid_images[: config.valid_size],
                                                 torch.Generator().manual_seed(_VALID_SEED))  # fmt: skip
        s.say = print if (progress is not False and world.is_main) else (lambda line: None)
        s.progress = progress
        stop = _loop(s, train_images)
        if not s.prog.history or s.prog.history[-1].step != s.prog.step:
            _validate(s)
        _checkpoint(s)  # (inside the seeded block: the checkpoint holds the training stream's RNG state)
    p = s.prog
    s.say(f"stopped ({stop}) after {p.epoch} epochs + {p.pos} steps, {p.step} steps, {p.cpu_s:.0f} s CPU")
    return TrainResult(run_dir=run, vae=s.vae.eval(), config=config, history=list(p.history), epochs=p.epoch,
                       steps=p.step, cpu_s=p.cpu_s, wall_s=p.wall_s, stopped=stop, rank=world.rank)  # fmt: skip


def _check_images(images: Tensor, vae_config: VAEConfig, batch_size: int) -> None:
    if tuple(images.shape[1:]) != vae_config.data_shape or images.dtype != torch.uint8:
        raise ValueError(
            f"train images must be uint8 of shape (N, {vae_config.data_shape}), got {images.dtype} {tuple(images.shape)}"
        )
    if images.shape[0] < batch_size:
        raise ValueError(f"batch_size {batch_size} exceeds the {images.shape[0]} training images")


@dataclass
class _Session:
    """Everything one training run holds: the model, Adam, the data generator and permutation, where it is."""

    run: Path
    config: TrainConfig
    world: World
    vae: VAE
    opt: torch.optim.Optimizer
    gen: torch.Generator
    perm: Tensor
    prog: Progress
    shard: Shard
    model: torch.nn.Module
    valid_x: Tensor | None = None
    say: object = None
    last_save: float = 0.0
    progress: bool | None = None
    bar: object = None

    @classmethod
    def open(
        cls, run: Path, vae_config: VAEConfig, config: TrainConfig, world: World, n: int, resume: bool
    ) -> _Session:
        """A fresh model and optimizer (drawn from the seeded stream), or the resumed run's state."""
        vae = VAE.from_config(vae_config)
        opt = torch.optim.Adam(vae.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=config.adam_eps)
        gen = torch.Generator().manual_seed(config.seed)
        perm, prog = torch.randperm(n, generator=gen), Progress()
        if resume:
            perm, prog = _restore(run, vae, opt, gen)
        model = DistributedDataParallel(vae) if world.size > 1 else vae
        return cls(run, config, world, vae, opt, gen, perm, prog, Shard.of(world, config.batch_size), model,
                   last_save=time.time())  # fmt: skip


def _stop_reason(config: TrainConfig, prog: Progress) -> str | None:
    if config.epochs is not None and prog.epoch >= config.epochs:
        return "epochs"
    if config.max_steps is not None and prog.step >= config.max_steps:
        return "max_steps"
    if config.cpu_budget_s is not None and prog.cpu_s >= config.cpu_budget_s:
        return "cpu_budget"
    return None


def _loop(s: _Session, train_images: Tensor) -> str:
    """Steps until a stopping criterion; validation at epoch ends, checkpoints every ``checkpoint_every_s``."""
    N, B = train_images.shape[0], s.config.batch_size
    steps_per_epoch = N // B  # the last partial batch is dropped
    s.vae.train()
    s.bar = bar = progress_bar(f"epoch {s.prog.epoch + 1}", steps_per_epoch, unit="steps",
                               enabled=False if not s.world.is_main else s.progress)  # fmt: skip
    while (stop := _stop_reason(s.config, s.prog)) is None:
        if s.prog.pos == 0:
            s.perm = torch.randperm(N, generator=s.gen)
            bar.reset()
            bar.set_description(f"epoch {s.prog.epoch + 1}")  # a new bar line per epoch: steps of this epoch
        t0, c0 = time.time(), time.process_time()
        loss = _step(s, train_images)
        save_now = _account(s, loss, t0, c0)
        bar.update(1)
        if s.prog.pos >= steps_per_epoch:
            s.prog.pos, s.prog.epoch = 0, s.prog.epoch + 1
            if s.prog.epoch % s.config.valid_every == 0:
                _validate(s)
        if save_now:
            _checkpoint(s)
            s.last_save = time.time()
    bar.close()
    return stop


def _step(s: _Session, train_images: Tensor) -> Tensor:
    """One minibatch step (skipped when a gradient is not finite; 20 such in a row stop the run)."""
    config, prog, B = s.config, s.prog, s.config.batch_size
    for g in s.opt.param_groups:
        g["lr"] = learning_rate(config.lr_schedule, config.lr, prog.epoch, config.epochs or 1)
    idx = s.perm[prog.pos * B : (prog.pos + 1) * B]
    x = s.shard.rows(s.vae.likelihood.prepare(train_images[idx], s.gen))  # whole batch drawn, own rows kept
    objective = make_objective(config.objective, config.k, config.gradient, config.beta, config.free_bits,
                               config.kl_warmup_steps, prog.step)  # fmt: skip
    s.opt.zero_grad(set_to_none=True)
    est = s.model(x, objective, s.shard)
    est.loss.backward()  # under DDP the gradients are averaged here: identical on every process
    if all(torch.isfinite(p.grad).all() for p in s.vae.parameters() if p.grad is not None):
        s.opt.step()
        prog.bad_steps = 0
    else:  # skipped everywhere alike, since the averaged gradients agree
        prog.bad_steps += 1
        if prog.bad_steps >= 20:
            raise RuntimeError(
                f"training diverged: 20 consecutive non-finite gradients at step {prog.step}; lower --lr"
            )
    prog.step += 1
    prog.pos += 1
    return est.loss.detach().double()


def _account(s: _Session, loss: Tensor, t0: float, c0: float) -> bool:
    """Log the loss and the step's time; whether to checkpoint now. Process 0's clock is the run's clock: it
    decides budgets and checkpoint times for every process (one all-reduce, which also averages the loss)."""
    prog, main, save_every = s.prog, float(s.world.is_main), s.config.checkpoint_every_s
    stats = torch.tensor(
        [
            float(loss) if torch.isfinite(loss) else 0.0,
            float(torch.isfinite(loss)),
            main * (prog.cpu_s + time.process_time() - c0),
            main * (prog.wall_s + time.time() - t0),
            main * float(save_every is not None and time.time() - s.last_save >= save_every),
        ],
        dtype=torch.float64,
    )
    if s.world.size > 1:
        torch.distributed.all_reduce(stats)
    if int(stats[1]) == s.world.size:
        prog.add_loss(float(stats[0]) / s.world.size)
    prog.cpu_s, prog.wall_s = float(stats[2]), float(stats[3])
    return bool(stats[4] > 0)


def _validate(s: _Session) -> None:
    if s.valid_x is None or not s.world.is_main:
        return
    # a phase of its own (1000 images x 100 samples: seconds): a bar below the epoch's
    ev = evaluate(s.vae, s.valid_x, k=s.config.valid_k, batch_size=100, elbo_particles=10, progress=s.progress)
    s.vae.train()
    p = s.prog
    rec = ValidationRecord(p.epoch, p.step, p.cpu_s, p.wall_s, ev.nll, ev.elbo, ev.rate, ev.distortion,
                           p.take_mean_loss())  # fmt: skip
    p.history.append(rec)
    if s.bar is not None:
        s.bar.clear()  # the epoch's line goes to stdout on the same terminal: no half-drawn bar beside it
    s.say(rec.line())


def _checkpoint(s: _Session) -> None:
    if s.world.is_main:
        _save(s.run, s.vae, s.opt, s.gen, s.perm, s.prog)
    s.world.barrier()
