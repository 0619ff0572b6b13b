r"""Every keyword option of ``varinf.fit`` goes to the one value that declares it, or is refused at once.

::

    varinf.fit(model, family, method="bam", max_steps=300, num_draws=32, seed=1)
      seed                   -> FitConfig          (settings every method shares: init, seed, dtype, device, ...)
      max_steps, num_draws   -> BaMOptions         (the method's own frozen options, validated)
      rank                   -> the family         (family options the method passes to the family it builds)
      anything else          -> OptionError naming the option and who takes it ("max_step": did you mean
                                'max_steps'?; "rank" under pathfinder: an option of the lowrank family, taken by
                                method='advi', 'bam' and 'auto')

All of this runs before the model is moved, checked or evaluated. Each method module declares ``Options``
(a :class:`MethodOptions` subclass) and ``family_options(family) -> frozenset`` of the family options it uses.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import OptionError
from ..families import FAMILIES, canonical_family, family_option_names
from .config import FitConfig

__all__ = ["DENSE_MAX", "MethodOptions", "Routed", "gaussian_family", "misplaced", "refuse_other_methods_options",
           "route_options"]  # fmt: skip

DENSE_MAX = 300  # dimensions up to which family="auto" means full rank (and Gaussian stages are dense)


@dataclass(frozen=True)
class MethodOptions:
    """Base of each method's frozen options: ``method`` names the method; fields are validated on construction."""

    method: ClassVar[str] = ""

    @classmethod
    def names(cls) -> frozenset[str]:
        """The keyword options this value accepts."""
        return frozenset(f.name for f in dataclasses.fields(cls))

    def updated(self, **changes) -> MethodOptions:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes) if changes else self

    def given(self) -> dict[str, Any]:
        """The fields that differ from their defaults."""
        base = type(self)()
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not getattr(base, f.name) and getattr(self, f.name) != getattr(base, f.name)}  # fmt: skip


@dataclass(frozen=True)
class Routed:
    """The options of one fit, each where it belongs."""

    config: FitConfig
    options: MethodOptions
    family_options: dict[str, Any]


def route_options(methods: dict, method, family, config: FitConfig | None, options: dict[str, Any]) -> Routed:
    """Split keyword ``options`` between ``FitConfig``, the method's options and the family (module docstring).

    ``methods``: name -> method module; ``method``: a name or a method's options value (``BaMOptions(...)``)."""
    name, base = _method(methods, method)
    module = methods[name]
    key = canonical_family(family) if isinstance(family, str) and family.lower() != "auto" else None
    takes_family = module.family_options(key if isinstance(family, str) else None)
    common, own, fam = {}, {}, {}
    for k, v in options.items():
        if k in FitConfig.__dataclass_fields__:
            common[k] = v
        elif k in module.Options.names():
            own[k] = v
        elif k in takes_family:
            fam[k] = v
        else:
            raise OptionError(misplaced(methods, k, v, name, family))
    return Routed((config or FitConfig()).replace(**common), base.updated(**own), fam)


def refuse_other_methods_options(methods: dict, name: str, family, options: dict[str, Any]) -> None:
    """Before the family is even resolved: an option another method declares and ``name`` does not (``batch_size``
    under BaM) is refused first, naming it."""
    own = methods[name].Options.names() | set(FitConfig.__dataclass_fields__)
    for k, v in options.items():
        if k not in own and any(k in mod.Options.names() for mod in methods.values()):
            raise OptionError(misplaced(methods, k, v, name, family))


def _method(methods: dict, method) -> tuple[str, MethodOptions]:
    if isinstance(method, MethodOptions):
        return method.method, method
    if not isinstance(method, str) or method not in methods:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(sorted(methods))}")
    return method, methods[method].Options()


def misplaced(methods: dict, key: str, value, method: str, family) -> str:
    """The one-line error for option ``key`` that ``method`` (fitting ``family``) does not take: who takes it,
    or the nearest known name."""
    if key == "batch_size" and method in ("bam", "pathfinder"):
        return (f"batch_size={value!r}: method={method!r} uses every data row at every iteration; minibatches need "
                "method='advi' (or 'auto', which then runs minibatch ADVI)")  # fmt: skip
    given = f"{key}={_shown(value)}"
    takers = sorted(m for m, mod in methods.items() if key in mod.Options.names())
    if takers:
        hint = _HINTS.get((method, key), "")
        return (f"{given}: not an option of method={method!r}; it is an option of "
                f"{_either('method', takers)}{hint}")  # fmt: skip
    families = sorted(f for f in FAMILIES if key in _family_names(f, family))
    if families:
        fam = _either("family", families)
        takers = sorted(m for m, mod in methods.items() if any(key in mod.family_options(f) for f in families))
        where = family if isinstance(family, str) else type(family).__name__
        return (f"{given}: an option of {fam}, which {_either('method', takers)} build; method={method!r} with "
                f"family={where!r} does not use it")  # fmt: skip
    known = set(FitConfig.__dataclass_fields__).union(*(mod.Options.names() for mod in methods.values()),
                                                      *(_family_names(f, family) for f in FAMILIES))  # fmt: skip
    near = difflib.get_close_matches(key, sorted(known), n=2, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
    return f"unknown option {given} for method={method!r}{hint}"


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_HINTS = {
    ("advi", "num_draws"): " (ADVI's draws per step are its objective's num_particles: objective=ELBO(8))",
}


def _family_names(key: str, family) -> frozenset[str]:
    """A family's option names; a flow's zuko options only when a flow was asked for (zuko's import is slow)."""
    if key == "flow" and not (isinstance(family, str) and family.lower() != "auto" and canonical_family(family) == key):
        return frozenset({"kind", "transforms", "hidden"})
    return family_option_names(key)


def _either(what: str, names: list[str]) -> str:
    quoted = [f"{what}={n!r}" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def gaussian_family(family, method: str, dim: int) -> str:
    """``"fullrank"`` or ``"lowrank"`` for a Gaussian method (``"auto"`` by dimension), else a one-line error."""
    if isinstance(family, str) and family.lower() == "auto":
        return "fullrank" if dim <= DENSE_MAX else "lowrank"
    key = canonical_family(family) if isinstance(family, str) else None
    if key in ("fullrank", "lowrank"):
        return key
    if not isinstance(family, str):
        raise ValueError(f"{method} builds its own Gaussian: name it, family='fullrank' or 'lowrank', instead of "
                         f"passing a {type(family).__name__} module (method='advi' fits a given module)")  # fmt: skip
    label = family
    raise ValueError(f"{method} fits a Gaussian with a full or low-rank covariance: use family='fullrank' or "
                     f"'lowrank' (got {label!r}; method='auto' handles the other families)")  # fmt: skip
