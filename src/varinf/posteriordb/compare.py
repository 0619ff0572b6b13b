r"""Compare an approximation's draws with posteriordb's reference draws, in reference standard deviations.

Per reference quantity :math:`i`: error of the mean :math:`|\hat m_i - m_i| / s_i` and ratio of standard
deviations :math:`\hat s_i / s_i`, where :math:`m, s` are the reference mean and sd and :math:`\hat m, \hat s`
those of the (optionally weighted) approximate draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .loader import ReferenceDraws

__all__ = ["ReferenceComparison", "compare_to_reference"]


@dataclass(frozen=True)
class ReferenceComparison:
    """Per-quantity accuracy against the reference (arrays ``(d,)`` in reference order)."""

    names: tuple[str, ...]
    mean_error: np.ndarray  # |mean - reference mean| / reference sd
    sd_ratio: np.ndarray  # sd / reference sd

    @property
    def max_mean_error(self) -> float:
        return float(self.mean_error.max())

    @property
    def mean_mean_error(self) -> float:
        return float(self.mean_error.mean())

    @property
    def min_sd_ratio(self) -> float:
        return float(self.sd_ratio.min())

    @property
    def max_sd_ratio(self) -> float:
        return float(self.sd_ratio.max())

    @property
    def mean_sd_ratio(self) -> float:
        return float(self.sd_ratio.mean())

    def worst(self) -> str:
        """The name of the quantity with the largest error of the mean."""
        return self.names[int(self.mean_error.argmax())]


def compare_to_reference(
    quantities: Tensor | np.ndarray,
    reference: ReferenceDraws,
    names: list[str] | tuple[str, ...],
    weights: Tensor | np.ndarray | None = None,
) -> ReferenceComparison:
    """Compare draws ``(S, d)`` (columns named ``names``) with ``reference``.

    Args:
        quantities: e.g. ``model.reference_quantities(z)`` of q's draws.
        reference: posteriordb reference draws.
        names: the columns' names; must equal ``reference.names`` (order included).
        weights: optional ``(S,)`` normalized importance weights (PSIS-corrected moments).
    """
    if tuple(names) != tuple(reference.names):
        missing = sorted(set(reference.names) - set(names))
        extra = sorted(set(names) - set(reference.names))
        raise ValueError(
            f"quantity names differ from the reference's: missing {missing}, unexpected {extra}"
            + ("" if missing or extra else " (same names, different order)")
        )
    x = (
        quantities.detach().to("cpu", torch.float64).numpy()
        if isinstance(quantities, Tensor)
        else np.asarray(quantities)
    )
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ValueError(f"quantities must be (S, {len(names)}), got {x.shape}")
    if weights is None:
        mean, sd = x.mean(0), x.std(0, ddof=1)
    else:
        w = weights.detach().cpu().double().numpy() if isinstance(weights, Tensor) else np.asarray(weights, float)
        w = w / w.sum()
        mean = w @ x
        sd = np.sqrt(np.maximum(w @ (x - mean) ** 2, 0.0))
    ref_sd = reference.sd
    return ReferenceComparison(tuple(names), np.abs(mean - reference.mean) / ref_sd, sd / ref_sd)
