r"""Posterior predictive draws: ``result.predict(data=new_rows, num_draws=S)``.

For draws :math:`z_s \sim q` the model's own code gives, over the rows of ``data`` (NumPyro's
``Predictive`` idea: prediction reuses the model, nothing is written twice):

- replicated data :math:`\tilde x_s \sim p(x \mid z_s)` from ``simulate(**z, data)``: ``{name: (S, n, ...)}``;
- derived quantities ``derived(**z, data)`` on these rows;
- foreign models (Stan, NumPyro, PyMC; :class:`~varinf.models.foreign.ForeignModel`): the engine's own
  generated quantities as ``replicated`` (Stan's generated quantities, observed sites drawn anew), its
  transformed parameters / deterministic sites as ``derived``, on its data or on new ``data`` (same
  parameter shapes), and the ``log_lik`` generated quantity, if any, as the pointwise log likelihood;
- when the rows carry everything the likelihood reads, the pointwise log likelihood
  :math:`\log p(x_i \mid z_s)` ``(S, n)`` and the log predictive density
  :math:`\log \frac1S\sum_s p(x_i \mid z_s)` per row (nats; held-out data: the usual test score).

Rows are processed in chunks within the model's memory budget; the outputs themselves are ``S × n``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..models import ModelError
from ..models.chunking import rows_per_chunk
from ..models.foreign import ForeignModel
from ..models.plate import Plate
from ..utils import seeded

__all__ = ["Predictions", "predict"]


@dataclass
class Predictions:
    """Posterior predictive draws for ``n`` rows, all from the same ``S`` draws of q.

    Attributes:
        latents: ``{latent: (S, *shape)}`` the draws of q used.
        replicated: ``{name: (S, n, ...)}`` replicated data (empty without ``simulate``).
        derived: ``{name: (S, ...)}`` derived quantities on these rows (empty without ``derived``).
        log_likelihood: ``(S, n)`` pointwise :math:`\\log p(x_i \\mid z_s)`, or None when the rows lack
            observations.
    """

    latents: dict[str, Tensor]
    replicated: dict[str, Tensor] = field(default_factory=dict)
    derived: dict[str, Tensor] = field(default_factory=dict)
    log_likelihood: Tensor | None = None

    @property
    def num_draws(self) -> int:
        return int(next(iter(self.latents.values())).shape[0])

    def mean(self) -> dict[str, Tensor]:
        """Posterior predictive mean of each replicated quantity: ``{name: (n, ...)}``."""
        return {k: v.double().mean(0) for k, v in self.replicated.items()}

    def interval(self, level: float = 0.9) -> dict[str, tuple[Tensor, Tensor]]:
        """Central posterior predictive interval of each replicated quantity: ``{name: (lower, upper)}``."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        qs = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
        out = {}
        for k, v in self.replicated.items():
            lo, hi = torch.quantile(v.double().reshape(v.shape[0], -1), qs, dim=0)
            out[k] = (lo.reshape(v.shape[1:]), hi.reshape(v.shape[1:]))
        return out

    def log_predictive_density(self) -> Tensor:
        r""":math:`\log \frac1S \sum_s p(x_i \mid z_s)` per row, ``(n,)`` float64 (nats)."""
        if self.log_likelihood is None:
            raise ValueError("these rows carry no observations, so there is no predictive density to score")
        ll = self.log_likelihood.double()
        return torch.logsumexp(ll, 0) - math.log(ll.shape[0])


def _rows(model, data: Mapping[str, Tensor] | None) -> dict[str, Tensor]:
    if data is None:
        if model.data is None:
            raise ModelError(f"{model.name} has no data; pass data=... to predict")
        return model.data
    ref = next((b for b in model.buffers() if b.is_floating_point()), None)
    checked = Plate(data, owner=f"{model.name} predict").data  # same row count everywhere, no NaN
    if ref is None:
        return checked
    return {
        k: v.to(device=ref.device, dtype=ref.dtype if v.is_floating_point() else v.dtype) for k, v in checked.items()
    }


@torch.no_grad()
def predict(
    result, data: Mapping[str, Tensor] | None = None, num_draws: int = 1000, seed: int | None = None
) -> Predictions:
    """Posterior predictive draws of ``result``'s model over ``data`` (default: its own rows); see the module
    docstring. ``seed`` fixes both the draws of q and the simulation noise (global RNG untouched); ``None``
    (default): fresh randomness from torch's global RNG, like :meth:`FitResult.draws`."""
    model = result.model
    if isinstance(num_draws, bool) or not isinstance(num_draws, int) or num_draws < 1:
        raise ValueError(f"num_draws must be an integer >= 1, got {num_draws!r}")
    if isinstance(model, ForeignModel):  # the engine's own generated quantities (Stan's generate_quantities)
        with seeded(seed):
            z, derived, generated, ll = model.predictive(result.family().sample((num_draws,)), data)
        return Predictions(z, generated, derived, ll)
    rows = _rows(model, data)
    n = int(next(iter(rows.values())).shape[0])
    with seeded(seed):
        z = model.constrained(result.family().sample((num_draws,)))
        per = rows_per_chunk(num_draws, 8, model.max_memory)
        chunks = [{k: v[i : i + per] for k, v in rows.items()} for i in range(0, n, per)]
        replicated = {}
        if model._simulate_fn is not None:
            parts = [model.simulate_data(z, c) for c in chunks]
            replicated = {k: torch.cat([p[k] for p in parts], 1) for k in parts[0]}
        derived = model.derived_quantities(z, rows)
        ll = None
        names = set(model.plate.names) if model.plate is not None else set()
        if model.has_plate and names <= set(rows):
            ll = model.pointwise_log_likelihood(z, rows)
    return Predictions(z, replicated, derived, ll)
