"""Input checks for the CAVI estimators: clear errors for bad shapes, NaN/inf and negative counts."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["as_data_matrix", "check_positive", "resolve_dtype", "seed_generator"]


def resolve_dtype(dtype: torch.dtype | None, x) -> torch.dtype:
    """``dtype`` if given, else the input's float32/float64 dtype, else torch's default dtype."""
    if dtype is not None:
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        return dtype
    src = getattr(x, "dtype", None)
    if src in (torch.float64, np.float64):
        return torch.float64
    if src in (torch.float32, np.float32):
        return torch.float32
    return torch.get_default_dtype()


def _first_bad(mask: Tensor) -> str:
    idx = mask.nonzero()[0].tolist()
    return f"first at index {tuple(idx)}" if len(idx) > 1 else f"first at index {idx[0]}"


def as_data_matrix(
    x, name: str = "X", *, dtype: torch.dtype | None = None, device=None, n_features: int | None = None
) -> Tensor:
    """A finite ``(N, D)`` floating tensor from an array-like, or a ``ValueError`` saying what is wrong."""
    dtype = resolve_dtype(dtype, x)
    if hasattr(x, "tocoo") or getattr(x, "is_sparse", False):
        raise ValueError(f"{name} must be a dense array (got a sparse matrix)")
    try:
        t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{name} could not be read as a numeric array: {e}") from None
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{name} must be real-valued, got dtype {t.dtype}")
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)})")
    if n_features is not None and t.shape[1] != n_features:
        raise ValueError(f"{name} has {t.shape[1]} features but the model was fitted with {n_features}")
    t = t.to(device=device if device is not None else t.device, dtype=dtype)
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        n_nan = int(torch.isnan(t).sum())
        raise ValueError(
            f"{name} contains {n_nan} NaN and {int(bad.sum()) - n_nan} infinite entries ({_first_bad(bad)})"
        )
    return t


def check_positive(value, name: str, *, allow_none: bool = False, integer: bool = False, allow_zero: bool = False):
    """Validate a scalar hyper-parameter (``> 0``, or ``>= 0`` with ``allow_zero``); returns it unchanged."""
    if value is None and allow_none:
        return value
    if integer and (not isinstance(value, int | np.integer) or isinstance(value, bool)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be finite and {'>=' if allow_zero else '>'} 0, got {value!r}")
    return value


def seed_generator(random_state) -> torch.Generator:
    """A CPU ``torch.Generator`` from an int seed, a Generator (used as is) or ``None`` (drawn from torch's RNG)."""
    if isinstance(random_state, torch.Generator):
        return random_state
    if random_state is None:
        random_state = int(torch.randint(0, 2**62, ()).item())
    if not isinstance(random_state, int | np.integer) or isinstance(random_state, bool):
        raise ValueError(f"random_state must be an int, a torch.Generator or None, got {random_state!r}")
    return torch.Generator().manual_seed(int(random_state))
