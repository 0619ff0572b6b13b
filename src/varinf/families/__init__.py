"""Variational families: ``nn.Module``s returning torch Distributions (see README.md here)."""

from __future__ import annotations

from .amortized import AmortizedNormal
from .base import AbstractFamily
from .diag_normal import DiagNormal
from .flow import Flow
from .gaussian import FullRank, LowRank, MeanField
from .preconditioned import Preconditioned

__all__ = [
    "FAMILIES",
    "AbstractFamily",
    "AmortizedNormal",
    "DiagNormal",
    "Flow",
    "FullRank",
    "LowRank",
    "MeanField",
    "Preconditioned",
    "make_family",
]

FAMILIES = {"meanfield": MeanField, "fullrank": FullRank, "lowrank": LowRank, "flow": Flow}
_ALIASES = {
    "mean_field": "meanfield",
    "mf": "meanfield",
    "full_rank": "fullrank",
    "fr": "fullrank",
    "low_rank": "lowrank",
    "nsf": "flow",
    "maf": "flow",
}


def make_family(name: str, dim: int, **kwargs) -> AbstractFamily:
    """Build a family by name (``meanfield``, ``fullrank``, ``lowrank``, ``flow``) for ``dim`` dimensions."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; choose from {sorted(FAMILIES)} (or pass an nn.Module)")
    if name.lower() in ("nsf", "maf"):
        kwargs.setdefault("kind", name.lower())
    return FAMILIES[key](dim, **kwargs)
