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
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from ..utils import atomic_write_text
from ..utils.progress import progress as progress_bar
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
from .evaluate import evaluate
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


def _start(run: Path, vae_config, config, data_spec, resume: bool, force: bool, world: World):
    """Decide the configs of this run (fresh or resumed) and write config.json."""
    cfg_path = run / CONFIG
    if resume:
        if not (run / CHECKPOINT).is_file():
            raise FileNotFoundError(f"nothing to resume: {run / CHECKPOINT} does not exist")
        saved = json.loads(cfg_path.read_text())
        old = TrainConfig.from_dict(saved["train"])
        # only the stopping criteria may change on resume: everything else defines the run
        stops = {f: getattr(config, f) for f in ("epochs", "max_steps", "cpu_budget_s")} if config else {}
        config = dataclasses.replace(old, **stops)
        return VAEConfig.from_dict(saved["vae"]), config, saved.get("data", {})
    if (run / CHECKPOINT).exists() and not force:
        raise ValueError(f"{run} already holds a run; resume it (--resume) or pass force=True (--force) to overwrite")
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
    resume: bool = False,
    force: bool = False,
    data_spec: dict | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] | None = print,
) -> TrainResult:
    """Train (or resume, with ``resume=True``: configs are read from the run folder and only the stopping
    criteria of ``config`` apply) a VAE on uint8 ``train_images`` ``(N, *data_shape)``.

    ``data_spec`` is stored in config.json (the CLI records where the images came from).
    """
    run, world = Path(run_dir), init_distributed()
    vae_config, config, data_spec = _start(run, vae_config, config, data_spec, resume, force, world)
    torch.manual_seed(config.seed)
    vae = VAE.from_config(vae_config)
    opt = torch.optim.Adam(vae.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=config.adam_eps)
    gen = torch.Generator().manual_seed(config.seed)
    N, B = train_images.shape[0], config.batch_size
    if tuple(train_images.shape[1:]) != vae_config.data_shape or train_images.dtype != torch.uint8:
        raise ValueError(
            f"train images must be uint8 of shape (N, {vae_config.data_shape}), got {train_images.dtype} {tuple(train_images.shape)}"
        )
    if N < B:
        raise ValueError(f"batch_size {B} exceeds the {N} training images")
    steps_per_epoch = N // B  # the last partial batch is dropped
    perm, prog = torch.randperm(N, generator=gen), Progress()
    if resume:
        perm, prog = _restore(run, vae, opt, gen)
    shard = Shard.of(world, B)
    model = DistributedDataParallel(vae) if world.size > 1 else vae
    valid_x = None
    if valid_images is not None and len(valid_images):
        valid_x = vae.likelihood.prepare(valid_images[: config.valid_size], torch.Generator().manual_seed(_VALID_SEED))
    say = log if (log is not None and world.is_main) else (lambda s: None)

    def validate() -> None:
        if valid_x is not None and world.is_main:
            # a phase of its own (1000 images x 100 samples: seconds): a bar below the epoch's
            ev = evaluate(vae, valid_x, k=config.valid_k, batch_size=100, elbo_particles=10, progress=progress)
            vae.train()
            rec = ValidationRecord(
                prog.epoch,
                prog.step,
                prog.cpu_s,
                prog.wall_s,
                ev.nll,
                ev.elbo,
                ev.rate,
                ev.distortion,
                prog.take_mean_loss(),
            )
            prog.history.append(rec)
            bar.clear()  # the epoch's line goes to stdout on the same terminal: no half-drawn bar beside it
            say(rec.line())

    def checkpoint() -> None:
        if world.is_main:
            _save(run, vae, opt, gen, perm, prog)
        world.barrier()

    vae.train()
    last_save, stop, save_every = time.time(), None, config.checkpoint_every_s
    bar = progress_bar(
        f"epoch {prog.epoch + 1}", steps_per_epoch, unit="steps", enabled=False if not world.is_main else progress
    )
    while stop is None:
        if config.epochs is not None and prog.epoch >= config.epochs:
            stop = "epochs"
        elif config.max_steps is not None and prog.step >= config.max_steps:
            stop = "max_steps"
        elif config.cpu_budget_s is not None and prog.cpu_s >= config.cpu_budget_s:
            stop = "cpu_budget"
        if stop:
            break
        if prog.pos == 0:
            perm = torch.randperm(N, generator=gen)
            bar.reset()
            bar.set_description(f"epoch {prog.epoch + 1}")  # a new bar line per epoch: steps of this epoch
        t0, c0 = time.time(), time.process_time()
        for g in opt.param_groups:
            g["lr"] = learning_rate(config.lr_schedule, config.lr, prog.epoch, config.epochs or 1)
        idx = perm[prog.pos * B : (prog.pos + 1) * B]
        x = shard.rows(vae.likelihood.prepare(train_images[idx], gen))  # whole batch drawn, own rows kept
        objective = make_objective(
            config.objective,
            config.k,
            config.gradient,
            config.beta,
            config.free_bits,
            config.kl_warmup_steps,
            prog.step,
        )
        opt.zero_grad(set_to_none=True)
        est = model(x, objective, shard)
        est.loss.backward()  # under DDP the gradients are averaged here: identical on every process
        if all(torch.isfinite(p.grad).all() for p in vae.parameters() if p.grad is not None):
            opt.step()
            prog.bad_steps = 0
        else:  # skipped everywhere alike, since the averaged gradients agree
            prog.bad_steps += 1
            if prog.bad_steps >= 20:
                raise RuntimeError(
                    f"training diverged: 20 consecutive non-finite gradients at step {prog.step}; lower --lr"
                )
        prog.step += 1
        prog.pos += 1
        # process 0's clock is the run's clock: it decides budgets and checkpoint times for every process
        # (one all-reduce, which also averages the logged loss)
        loss = est.loss.detach().double()
        main = float(world.is_main)
        stats = torch.tensor(
            [
                float(loss) if torch.isfinite(loss) else 0.0,
                float(torch.isfinite(loss)),
                main * (prog.cpu_s + time.process_time() - c0),
                main * (prog.wall_s + time.time() - t0),
                main * float(save_every is not None and time.time() - last_save >= save_every),
            ],
            dtype=torch.float64,
        )
        if world.size > 1:
            torch.distributed.all_reduce(stats)
        if int(stats[1]) == world.size:
            prog.add_loss(float(stats[0]) / world.size)
        prog.cpu_s, prog.wall_s = float(stats[2]), float(stats[3])
        bar.update(1)
        if prog.pos >= steps_per_epoch:
            prog.pos, prog.epoch = 0, prog.epoch + 1
            if prog.epoch % config.valid_every == 0:
                validate()
        if stats[4] > 0:
            checkpoint()
            last_save = time.time()
    bar.close()
    if not prog.history or prog.history[-1].step != prog.step:
        validate()
    checkpoint()
    say(f"stopped ({stop}) after {prog.epoch} epochs + {prog.pos} steps, {prog.step} steps, {prog.cpu_s:.0f} s CPU")
    return TrainResult(
        run_dir=run,
        vae=vae.eval(),
        config=config,
        history=list(prog.history),
        epochs=prog.epoch,
        steps=prog.step,
        cpu_s=prog.cpu_s,
        wall_s=prog.wall_s,
        stopped=stop,
        rank=world.rank,
    )
