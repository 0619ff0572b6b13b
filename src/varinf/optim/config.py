"""``FitConfig``: the settings every fitting method shares (where to start, seed, precision, device, threads,
progress, the model check), and the one-line checks every options dataclass uses.

Each method has its own frozen options beside it (``methods/advi.py``: ``ADVIOptions``, ...); ``varinf.fit``
routes each keyword option to the one value that declares it (:mod:`.methods.routing`). Invalid values raise a
one-line ``ValueError`` naming the option, before any model evaluation.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["FitConfig", "check_fraction", "check_int", "check_positive", "is_number"]


@dataclass(frozen=True)
class FitConfig:
    r"""Settings shared by every fitting method.

    Attributes:
        init: ``"auto"`` (Laplace when a mode exists, else zeros), ``"laplace"`` (warn on fallback),
            ``"zeros"``, ``"uniform"``, a dict of latent values or a flat unconstrained tensor.
        seed: seeds all randomness inside the fit (the global RNG state is left untouched); ``None``
            uses the global RNG.
        dtype, device: move (a copy of) the model and the family there: ``torch.float32`` or ``torch.float64``
            (default: the model's own); the model passed in is left as it is.
        progress: show a progress bar (default: only when stderr is a terminal).
        threads: torch intra-op threads during the fit (``"auto"``: one for small data; ``None``: leave).
        check: evaluate the model once first and raise a clear error if it is broken.
    """

    init: Any = "auto"
    seed: int | None = 0
    dtype: torch.dtype | None = None
    device: str | torch.device | None = None
    progress: bool | None = None
    threads: int | str | None = "auto"
    check: bool = True

    def __post_init__(self):
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed must be an int or None, got {self.seed!r}")
        if self.dtype is not None and self.dtype not in (torch.float32, torch.float64):
            # half precision: no Cholesky, eigh or L-BFGS in float16/bfloat16, and too few digits for an ELBO
            raise ValueError(
                f"dtype must be torch.float32 or torch.float64 (or None: the model's own), got {self.dtype!r}"
            )
        if self.device is not None:
            _check_device(self.device)
        t = self.threads
        if not (t is None or t == "auto" or (isinstance(t, int) and not isinstance(t, bool) and t >= 1)):
            raise ValueError(f"threads must be an int >= 1, 'auto' or None, got {t!r}")
        if self.progress is not None and not isinstance(self.progress, bool):
            raise ValueError(f"progress must be True, False or None, got {self.progress!r}")
        if not isinstance(self.check, bool):
            raise ValueError(f"check must be True or False, got {self.check!r}")

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


def is_number(x) -> bool:
    """A finite real number (not a bool)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def check_int(name: str, x, lo: int) -> None:
    """``x`` must be an integer at least ``lo``."""
    if isinstance(x, bool) or not isinstance(x, int) or x < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {x!r}")


def check_positive(name: str, x, allow_none: bool = False) -> None:
    """``x`` must be a finite number > 0 (or None when ``allow_none``)."""
    if x is None and allow_none:
        return
    if not (is_number(x) and x > 0):
        raise ValueError(f"{name} must be > 0{' or None' if allow_none else ''}, got {x!r}")


def check_fraction(name: str, x, lo_open: bool, hi_open: bool) -> None:
    """``x`` must lie in the unit interval with the given open ends."""
    ok = is_number(x) and (x > 0 if lo_open else x >= 0) and (x < 1 if hi_open else x <= 1)
    if not ok:
        raise ValueError(f"{name} must be in {'(' if lo_open else '['}0, 1{')' if hi_open else ']'}, got {x!r}")
