"""Where a fit starts: the initial point in unconstrained space, the Laplace approximation when the
posterior has a proper mode, and the family built around them (shared by every fitting method)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..families import AbstractFamily, make_family
from ..models import Model
from ..models.foreign import ForeignModel
from ..models.model import distribution_validation
from .config import FitConfig
from .laplace import LaplaceInit, preconditioned_family
from .minibatch import check_batch_size, laplace_start

__all__ = ["Start", "build_family", "distribution_validation", "initial_point", "start"]


def initial_point(model: Model, init, generator: torch.Generator | None = None) -> Tensor:
    """The starting point in unconstrained space: ``"zeros"``, ``"uniform"`` (Stan: U(-2, 2)),
    a dict of constrained values, or a flat unconstrained tensor of size ``model.dim``."""
    if isinstance(init, str):
        if init == "zeros":
            return torch.zeros(model.dim)
        if init == "uniform":
            return torch.rand(model.dim, generator=generator) * 4 - 2
        raise ValueError(
            f"unknown init {init!r}; use 'auto', 'laplace', 'zeros', 'uniform', a dict of latent values or a tensor"
        )
    if isinstance(init, Mapping):
        return model.unconstrain(init).reshape(model.dim)
    u = torch.as_tensor(init, dtype=torch.get_default_dtype())
    if u.shape != (model.dim,):
        raise ValueError(f"init tensor must have shape ({model.dim},), got {tuple(u.shape)}")
    return u


@dataclass
class Start:
    """The moved model, its dtype/device, the initial point ``u0`` ``(D,)`` and the Laplace fit (or None)."""

    model: Model
    dtype: torch.dtype
    device: torch.device
    u0: Tensor
    laplace: LaplaceInit | None

    @property
    def evaluations(self) -> int:
        return self.laplace.evaluations if self.laplace is not None else 0


def start(model: Model, config: FitConfig, laplace: bool = True, batch_size: int | None = None) -> Start:
    """Move the model to ``config``'s dtype/device, check it (and a minibatch size against its rows), and find
    the starting point.

    With ``init`` "auto"/"laplace" (and ``laplace=True``) L-BFGS looks for the posterior mode from zeros and
    three U(-2, 2) starts (a fixed generator keeps fits reproducible); the highest mode wins. A foreign model
    (Stan, NumPyro, PyMC) whose program rejects zero starts at the first of 100 U(-2, 2) points it accepts. Models with
    more than ``minibatch.LAPLACE_ROWS`` data rows: on a subsample, then refined on all rows."""
    init = config.init
    check_batch_size(model, batch_size)
    if config.dtype is not None or config.device is not None:  # a converted copy: the user's model stays as it is
        model = model.converted(device=config.device, dtype=config.dtype)
    ref = next((b for b in model.buffers() if b.is_floating_point()), None)
    dtype = config.dtype or (ref.dtype if ref is not None and ref.is_floating_point() else torch.get_default_dtype())
    device = torch.device(config.device) if config.device is not None else (
        ref.device if ref is not None else torch.device("cpu"))  # fmt: skip
    wants_laplace = isinstance(init, str) and init in ("laplace", "auto")
    u0 = initial_point(model, "zeros" if wants_laplace else init).to(device=device, dtype=dtype)
    if wants_laplace and isinstance(model, ForeignModel):  # a program may reject zero: Stan's random inits
        u0 = model.finite_start(u0)
    if config.check:
        with distribution_validation(True):
            model.check(u0)
    found = None
    if wants_laplace and laplace:
        found = laplace_start(model, u0)
        if found.ok:
            u0 = found.mode
        elif init == "laplace":
            warnings.warn(f"{model.name}: Laplace initialization failed ({found.reason}); starting from zeros",
                          stacklevel=4)  # fmt: skip
    return Start(model, dtype, device, u0, found)


def build_family(family: str | nn.Module, s: Start, **family_kwargs) -> AbstractFamily:
    """The family module, around the Laplace approximation when there is one, on ``s``'s dtype/device."""
    model = s.model
    if isinstance(family, str) and s.laplace is not None and s.laplace.ok:
        family = preconditioned_family(family, model.dim, s.laplace, **family_kwargs)
    elif isinstance(family, str):
        family = make_family(family, model.dim, loc=s.u0, **family_kwargs)
    elif family_kwargs:
        raise TypeError(f"unexpected keyword arguments {sorted(family_kwargs)} (a family module was given)")
    if not isinstance(family, nn.Module):
        raise TypeError(f"family must be a name or an nn.Module, got {type(family).__name__}")
    if getattr(family, "dim", model.dim) != model.dim:
        raise ValueError(f"family has dim={family.dim} but the model has {model.dim} unconstrained dimensions")
    return family.to(device=s.device, dtype=s.dtype)
