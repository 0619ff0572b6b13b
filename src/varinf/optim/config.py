"""``FitConfig``: every setting of a fit in one frozen, validated value (instead of a long argument list).

``varinf.fit(model, family, objective, **options)`` builds one from its keyword options; methods read
from it and never take loose arguments. Invalid values raise a one-line ``ValueError`` naming the option.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["FitConfig"]


@dataclass(frozen=True)
class FitConfig:
    r"""Settings shared by every fitting method (ADVI, and the methods added beside it).

    Attributes:
        max_steps: cap on optimizer steps (step-size trials not included).
        lr: Adam step size, or ``"auto"`` (try 0.3/0.1/0.03/0.01 for 50 steps each, keep the best).
        optimizer: ``f(params, lr) -> torch.optim.Optimizer`` (default: Adam).
        tol_rel_obj: relative ELBO change for stationarity; ``None`` runs exactly ``max_steps`` at a
            constant step (averaging the final ``average`` fraction).
        window: steps per convergence window.
        average: fraction of each phase over which parameters are averaged (0 = keep the last iterate).
        decay: factor applied to the step size each time the ELBO becomes stationary.
        max_decays: at most this many step-size reductions.
        tol_param: stop when a smaller step moves q's mean and log-sd by less than this many sds.
        init: ``"auto"`` (Laplace when a mode exists, else zeros), ``"laplace"`` (warn on fallback),
            ``"zeros"``, ``"uniform"``, a dict of latent values or a flat unconstrained tensor.
        seed: seeds all randomness inside the fit (the global RNG state is left untouched); ``None``
            uses the global RNG.
        dtype, device: move (a copy of) the model and the family there: ``torch.float32`` or ``torch.float64``
            (default: the model's own); the model passed in is left as it is.
        progress: show a progress bar (default: only when stderr is a terminal).
        threads: torch intra-op threads during the fit (``"auto"``: one for small data; ``None``: leave).
        check: evaluate the model once first and raise a clear error if it is broken.
        max_recoveries: step-backs allowed after runs of non-finite bounds before :class:`FitError`.
        callback: ``f(step, window_mean_bound)`` after every convergence window.
        batch_size: fit on minibatches of this many data rows (models with data only): shuffled epochs,
            likelihood scaled by N/B, with a control variate that keeps the gradient noise small
            (:mod:`varinf.optim.minibatch`); ``None`` uses every row at every step.
    """

    max_steps: int = 10_000
    lr: float | str = "auto"
    optimizer: Callable[[list, float], torch.optim.Optimizer] | None = None
    tol_rel_obj: float | None = 1e-3
    window: int = 100
    average: float = 0.25
    decay: float = 0.3
    max_decays: int = 4
    tol_param: float = 0.05
    init: Any = "auto"
    seed: int | None = 0
    dtype: torch.dtype | None = None
    device: str | torch.device | None = None
    progress: bool | None = None
    threads: int | str | None = "auto"
    check: bool = True
    max_recoveries: int = 10
    callback: Callable[[int, float], None] | None = None
    batch_size: int | None = None

    def __post_init__(self):
        _int_at_least("max_steps", self.max_steps, 1)
        _int_at_least("window", self.window, 2)
        _int_at_least("max_decays", self.max_decays, 0)
        _int_at_least("max_recoveries", self.max_recoveries, 0)
        if isinstance(self.lr, str):
            if self.lr != "auto":
                raise ValueError(f"lr must be a positive number or 'auto', got {self.lr!r}")
        elif not _positive(self.lr):
            raise ValueError(f"lr must be > 0 (or 'auto'), got {self.lr!r}")
        if self.tol_rel_obj is not None and not _positive(self.tol_rel_obj):
            raise ValueError(f"tol_rel_obj must be > 0 or None, got {self.tol_rel_obj!r}")
        if not (_number(self.average) and 0 <= self.average < 1):
            raise ValueError(f"average must be in [0, 1), got {self.average!r}")
        if not (_number(self.decay) and 0 < self.decay < 1):
            raise ValueError(f"decay must be in (0, 1), got {self.decay!r}")
        if not _positive(self.tol_param):
            raise ValueError(f"tol_param must be > 0, got {self.tol_param!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed must be an int or None, got {self.seed!r}")
        if self.dtype is not None and self.dtype not in (torch.float32, torch.float64):
            # half precision: no Cholesky, eigh or L-BFGS in float16/bfloat16, and too few digits for an ELBO
            raise ValueError(f"dtype must be torch.float32 or torch.float64 (or None: the model's own), got {self.dtype!r}")
        if self.device is not None:
            _check_device(self.device)
        if self.batch_size is not None:
            _int_at_least("batch_size", self.batch_size, 1)
        t = self.threads
        if not (t is None or t == "auto" or (isinstance(t, int) and not isinstance(t, bool) and t >= 1)):
            raise ValueError(f"threads must be an int >= 1, 'auto' or None, got {t!r}")

    def replace(self, **changes) -> FitConfig:
        return dataclasses.replace(self, **changes)


def _check_device(device) -> None:
    """A one-line error for a device torch cannot parse or this machine does not have (torch's own errors come
    from deep inside the first tensor moved there)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}, but this torch build sees no CUDA device (torch.cuda.is_available() "
                         "is False); use device='cpu'")  # fmt: skip
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r}, but only {torch.cuda.device_count()} CUDA device(s) are visible")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r}, but MPS is not available here; use device='cpu'")


def _number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _positive(x) -> bool:
    return _number(x) and x > 0


def _int_at_least(name: str, x, lo: int) -> None:
    if isinstance(x, bool) or not isinstance(x, int) or x < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {x!r}")
