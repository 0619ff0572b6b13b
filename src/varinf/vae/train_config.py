"""Value types of training: what to run (:class:`TrainConfig`), where it got (:class:`Progress`), what it
measured (:class:`ValidationRecord`) and the outcome (:class:`TrainResult`). Nats; times in seconds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .model import VAE
from .schedule import SCHEDULES

__all__ = ["Progress", "TrainConfig", "TrainResult", "ValidationRecord"]


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Args:
        objective: ``"elbo"`` or ``"iwae"``.
        k: ELBO particles / IWAE importance samples per example.
        gradient: core estimator: ``"reparam"``, ``"stl"``, ``"dreg"`` (IWAE), ``"score"``.
        beta: β-VAE rate weight (ELBO only).
        kl_warmup_steps: β rises linearly from 0 over this many steps (0 = off).
        free_bits: minimum nats charged per latent dimension (0 = off).
        batch_size: global minibatch (split across processes under torchrun). 20 in the IWAE paper.
        lr, adam_eps, lr_schedule: Adam step size, epsilon (1e-4 in the IWAE paper), schedule name.
        epochs, max_steps, cpu_budget_s: stop at whichever comes first (``None`` = no limit); CPU seconds
            of training steps in this process. These three may change when a run is resumed.
        seed: seeds model init, data order/binarization and noise.
        valid_every, valid_k, valid_size: validate every this many epochs with an IWAE bound of ``valid_k``
            samples on the first ``valid_size`` validation images.
        checkpoint_every_s: also checkpoint mid-epoch after this many wall seconds (``None``: only at the end).
    """

    objective: str = "elbo"
    k: int = 1
    gradient: str = "reparam"
    beta: float = 1.0
    kl_warmup_steps: int = 0
    free_bits: float = 0.0
    batch_size: int = 20
    lr: float = 1e-3
    adam_eps: float = 1e-4
    lr_schedule: str = "burda"
    epochs: int | None = 10
    max_steps: int | None = None
    cpu_budget_s: float | None = None
    seed: int = 0
    valid_every: int = 1
    valid_k: int = 100
    valid_size: int = 1000
    checkpoint_every_s: float | None = 600.0

    def __post_init__(self):
        if self.objective not in ("elbo", "iwae"):
            raise ValueError(f"objective must be 'elbo' or 'iwae', got {self.objective!r}")
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {SCHEDULES}, got {self.lr_schedule!r}")
        for name in ("k", "batch_size", "valid_every", "valid_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.beta < 0 or self.free_bits < 0:
            raise ValueError("lr must be > 0; beta and free_bits >= 0")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        if set(d) - names:
            raise ValueError(f"unknown training config keys {sorted(set(d) - names)}")
        return cls(**d)


@dataclass(frozen=True)
class ValidationRecord:
    """One validation: IWAE-bound NLL (``valid_k`` samples), ELBO, rate, distortion on the validation subset;
    ``train_loss`` is the mean training loss since the previous record."""

    epoch: int
    step: int
    cpu_s: float
    wall_s: float
    nll: float
    elbo: float
    rate: float
    distortion: float
    train_loss: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def line(self) -> str:
        return (
            f"epoch {self.epoch:4d} step {self.step:7d} cpu {self.cpu_s:7.0f}s | train loss {self.train_loss:7.2f} | "
            f"valid NLL {self.nll:7.2f} -ELBO {-self.elbo:7.2f} (rate {self.rate:6.2f} distortion {self.distortion:7.2f})"
        )


@dataclass
class Progress:
    """Where a run is (everything besides tensors that a checkpoint must restore)."""

    epoch: int = 0
    step: int = 0
    pos: int = 0  # batches done in the current epoch
    cpu_s: float = 0.0
    wall_s: float = 0.0
    bad_steps: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    history: list[ValidationRecord] = field(default_factory=list)

    def add_loss(self, v: float) -> None:
        self.loss_sum += v
        self.loss_count += 1

    def take_mean_loss(self) -> float:
        m = self.loss_sum / self.loss_count if self.loss_count else float("nan")
        self.loss_sum, self.loss_count = 0.0, 0
        return m

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["history"] = [r.to_dict() for r in self.history]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Progress:
        d = dict(d)
        history = [ValidationRecord(**r) for r in d.pop("history", [])]
        return cls(**d, history=history)


@dataclass
class TrainResult:
    """The trained model and how it got there."""

    run_dir: Path
    vae: VAE
    config: TrainConfig
    history: list[ValidationRecord]
    epochs: int
    steps: int
    cpu_s: float
    wall_s: float
    stopped: str
    rank: int = 0  # this process's rank under torchrun (0 otherwise)
