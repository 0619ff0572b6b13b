"""Variational families: modules (``nn.Module``) whose ``forward()`` returns a torch ``Distribution`` (see README.md here)."""

from __future__ import annotations

import inspect

from .amortized import AmortizedNormal
from .base import AbstractFamily
from .diag_normal import DiagNormal
from .flow import Flow, flow_option_names
from .gaussian import DEFAULT_RANK, FullRank, LowRank, MeanField
from .lowrank_update import DiagPlusLowRank, DiagPlusLowRankNormal
from .mixture import EqualMixture, MixtureFamily
from .preconditioned import Preconditioned

__all__ = [
    "DEFAULT_RANK",
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
    "check_family_options",
    "family_label",
    "family_option_names",
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


def family_option_names(name: str) -> frozenset[str]:
    """The keyword options a family built by name accepts (``rank`` for ``"lowrank"``; for ``"flow"`` also the
    options zuko's flows pass on, such as ``passes`` or ``bins``): its constructor's parameters except ``dim``
    and ``loc``, which the fitting method sets (and ``seed``, ``context`` and ``hidden_features``: the fit's seed,
    no conditioning, ``hidden``)."""
    key = canonical_family(name)
    names = _parameters(FAMILIES[key].__init__)
    if key == "flow":
        names |= flow_option_names()
    return frozenset(names - {"dim", "loc", "seed", "context", "hidden_features"})


def _parameters(fn) -> set[str]:
    return {p.name for p in inspect.signature(fn).parameters.values()
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self"}  # fmt: skip


def check_family_options(name: str, dim: int, options: dict) -> None:
    """One-line errors for family option values that cannot work, before any model evaluation: a low-rank
    ``rank`` outside ``[1, dim]``, an unknown flow ``kind``."""
    key = canonical_family(name)
    rank = options.get("rank")
    if key == "lowrank" and rank is not None and (isinstance(rank, bool) or not isinstance(rank, int)
                                                  or not 1 <= rank <= dim):  # fmt: skip
        raise ValueError(f"rank must be an integer between 1 and dim={dim}, got {rank!r}")
    if key == "flow" and options.get("kind", "nsf") not in ("nsf", "maf"):
        raise ValueError(f"unknown flow kind {options['kind']!r}; use 'nsf' or 'maf'")
