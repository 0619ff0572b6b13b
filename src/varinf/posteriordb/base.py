r"""The base class of posteriordb models, and helpers that read posteriordb's ``data.json`` dictionaries.

A :class:`PosteriordbModel` is a :class:`varinf.models.Model` built from a posteriordb data dictionary
(:meth:`PosteriordbModel.from_data`) whose log joint is the Stan program's target density, written in
PyTorch. Conventions:

- Data are stored as float64 buffers, so a model runs in float64 unless cast (``model.float()``):
  the benchmark compares against reference draws to a few hundredths of a standard deviation.
- ``log_joint`` keeps every normalizing constant of proper densities (so it can be compared with
  scipy, and the importance-sampled evidence means something); Stan's ``~`` drops them, which changes
  nothing about the posterior. Stan's implicit flat priors contribute 0; such models set
  ``improper_prior = True`` (their "evidence" is then only defined up to a constant).
- Half-distributions on ``<lower=0>`` parameters are normalized (e.g. half-Cauchy has the extra
  :math:`\log 2`), which Stan drops as a constant.
- Latent names follow the Stan ``parameters`` block where the support maps one to one. Where Stan's
  constraint depends on another parameter (garch's ``upper=(1-alpha1)``), or where a model is written
  on another scale, the latent has its own name and the model adds the Jacobian explicitly.

Comparing with posteriordb's reference draws: :meth:`PosteriordbModel.stan_quantities` maps the
constrained latents to the quantities the reference reports (Stan parameters and transformed
parameters, e.g. eight schools' ``theta``), and :meth:`PosteriordbModel.reference_quantities` flattens
them into the reference's column order with Stan's 1-based names (:attr:`PosteriordbModel.reference_names`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..models import Model

__all__ = ["PosteriordbModel", "data_int", "data_matrix", "data_vector", "stan_element_names"]


def stan_element_names(name: str, shape: tuple[int, ...]) -> list[str]:
    """Stan's names for the scalars of ``name`` with ``shape``, in Stan's output order.

    1-based indices; Stan writes arrays and matrices in column-major order (first index fastest).

    Example:
        >>> stan_element_names("x", (2, 2))
        ['x[1,1]', 'x[2,1]', 'x[1,2]', 'x[2,2]']
    """
    if not shape:
        return [name]
    ranges = [range(1, s + 1) for s in reversed(shape)]
    return [f"{name}[{','.join(map(str, reversed(idx)))}]" for idx in itertools.product(*ranges)]


def _flatten_stan(v: Tensor, event_dims: int) -> Tensor:
    """``(*S, *shape)`` -> ``(*S, prod(shape))`` in Stan's column-major element order."""
    if event_dims == 0:
        return v.unsqueeze(-1)
    batch = v.dim() - event_dims
    perm = list(range(batch)) + list(reversed(range(batch, v.dim())))
    return v.permute(perm).reshape(*v.shape[:batch], -1)


def _where(model: str, key: str) -> str:
    return f"posteriordb data for {model!r}: {key!r}"


def data_int(data: Mapping[str, Any], key: str, model: str) -> int:
    """An integer entry of a data dictionary (clear error when missing or not an integer)."""
    if key not in data:
        raise ValueError(f"{_where(model, key)} is missing (keys present: {sorted(data)})")
    v = data[key]
    if isinstance(v, list) and len(v) == 1:  # R's JSON writer turns scalars into length-1 arrays
        v = v[0]
    if isinstance(v, bool) or not float(v).is_integer():
        raise ValueError(f"{_where(model, key)} must be an integer, got {v!r}")
    return int(v)


def data_vector(data: Mapping[str, Any], key: str, model: str, n: int | None = None) -> Tensor:
    """A 1-D numeric entry as a float64 tensor, optionally of length ``n``; finite values only."""
    if key not in data:
        raise ValueError(f"{_where(model, key)} is missing (keys present: {sorted(data)})")
    v = data[key]
    v = [v] if not isinstance(v, list) else v
    try:
        t = torch.tensor(v, dtype=torch.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{_where(model, key)} is not a numeric vector ({e})") from None
    if t.dim() != 1:
        raise ValueError(f"{_where(model, key)} must be a vector, got shape {tuple(t.shape)}")
    if n is not None and t.numel() != n:
        raise ValueError(f"{_where(model, key)} has {t.numel()} entries, expected {n}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{_where(model, key)} contains NaN or infinite values")
    return t


def data_matrix(data: Mapping[str, Any], key: str, model: str, shape: tuple[int, int] | None = None) -> Tensor:
    """A 2-D numeric entry (list of rows) as a float64 tensor, optionally checked against ``shape``."""
    if key not in data:
        raise ValueError(f"{_where(model, key)} is missing (keys present: {sorted(data)})")
    try:
        t = torch.tensor(data[key], dtype=torch.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{_where(model, key)} is not a numeric matrix ({e})") from None
    if t.dim() != 2 or (shape is not None and tuple(t.shape) != tuple(shape)):
        want = f"{shape}" if shape is not None else "2-D"
        raise ValueError(f"{_where(model, key)} has shape {tuple(t.shape)}, expected {want}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{_where(model, key)} contains NaN or infinite values")
    return t


class PosteriordbModel(Model):
    """A varinf model of one posteriordb model (abstract: subclasses set ``posteriordb_name`` and
    implement ``from_data`` and ``log_joint``; override ``stan_quantities`` when the reference reports
    other quantities than the latents)."""

    posteriordb_name: ClassVar[str] = ""
    improper_prior: ClassVar[bool] = False

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> PosteriordbModel:
        """Build the model from a posteriordb data dictionary (the parsed ``data.json``)."""
        raise NotImplementedError

    def stan_quantities(self, z: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Constrained quantities named as in the reference, in reference order: ``{name: (*S, *shape)}``.

        Default: the latents themselves.
        """
        return dict(z)

    def _reference_layout(self) -> list[tuple[str, tuple[int, ...]]]:
        if getattr(self, "_layout", None) is None:
            with torch.no_grad():
                z, _ = self.constrain(torch.zeros(1, self.dim, dtype=self._dtype()))
                q = self.stan_quantities(z)
            self._layout = [(k, tuple(v.shape[1:])) for k, v in q.items()]
        return self._layout

    def _dtype(self) -> torch.dtype:
        b = next(self.buffers(), None)
        return b.dtype if b is not None and b.is_floating_point() else torch.get_default_dtype()

    @property
    def reference_names(self) -> list[str]:
        """Stan's names of the reference quantities, e.g. ``['theta[1]', ..., 'mu', 'tau']``."""
        return [n for k, shape in self._reference_layout() for n in stan_element_names(k, shape)]

    def reference_quantities(self, z: Mapping[str, Tensor]) -> Tensor:
        """``(*S, d)``: :meth:`stan_quantities` flattened in the reference's column order."""
        q = self.stan_quantities(z)
        layout = self._reference_layout()
        return torch.cat([_flatten_stan(q[k], len(shape)) for k, shape in layout], dim=-1)
