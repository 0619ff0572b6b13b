"""Variational families: modules (``nn.Module``) whose ``forward()`` returns a torch ``Distribution`` (see README.md here)."""

from __future__ import annotations

from .amortized import AmortizedNormal
from .base import AbstractFamily
from .diag_normal import DiagNormal
from .flow import Flow
from .gaussian import FullRank, LowRank, MeanField
from .lowrank_update import DiagPlusLowRank, DiagPlusLowRankNormal
from .mixture import EqualMixture, MixtureFamily
from .preconditioned import Preconditioned

__all__ = [
    "FAMILIES",
    "FAMILY_ALIASES",
    "AbstractFamily",
    "AmortizedNormal",
    "DiagNormal",
    "DiagPlusLowRank",
    "DiagPlusLowRankNormal",
    "EqualMixture",
    "Flow",
    "FullRank",
    "LowRank",
    "MeanField",
    "MixtureFamily",
    "Preconditioned",
    "canonical_family",
    "family_label",
    "make_family",
]

FAMILIES = {"meanfield": MeanField, "fullrank": FullRank, "lowrank": LowRank, "flow": Flow}
# The one alias table: every spelling a user may pass -> the canonical name in FAMILIES.
FAMILY_ALIASES = {
    "mean_field": "meanfield",
    "mf": "meanfield",
    "full_rank": "fullrank",
    "fr": "fullrank",
    "low_rank": "lowrank",
    "nsf": "flow",
    "maf": "flow",
}


def canonical_family(name: str) -> str:
    """The canonical name (a key of ``FAMILIES``) for a family name or alias; ``ValueError`` if unknown."""
    if not isinstance(name, str):
        raise TypeError(f"family must be a name or an nn.Module, got {type(name).__name__}")
    key = FAMILY_ALIASES.get(name.lower(), name.lower())
    if key not in FAMILIES:
        names = sorted(FAMILIES) + sorted(FAMILY_ALIASES)
        raise ValueError(f"unknown family {name!r}; choose from {', '.join(names)} (or pass an nn.Module)")
    return key


def family_label(family) -> str:
    """What to call a family in summaries: the canonical name for a string, else the module's class name
    (a ``Preconditioned`` wrapper is named after the family it wraps)."""
    if isinstance(family, str):
        return canonical_family(family)
    while isinstance(family, Preconditioned):
        family = family.base
    for name, cls in FAMILIES.items():
        if type(family) is cls:
            return name
    return type(family).__name__


def make_family(name: str, dim: int, **kwargs) -> AbstractFamily:
    """Build a family by name (``meanfield``, ``fullrank``, ``lowrank``, ``flow`` or an alias) for ``dim``
    dimensions."""
    key = canonical_family(name)
    if name.lower() in ("nsf", "maf"):
        kwargs.setdefault("kind", name.lower())
    return FAMILIES[key](dim, **kwargs)
