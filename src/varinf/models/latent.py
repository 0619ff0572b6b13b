"""A named latent variable: name, shape and support."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch.distributions import constraints

from .constraints import as_constraint

__all__ = ["Latent"]


@dataclass(frozen=True)
class Latent:
    """A latent variable of a :class:`~varinf.models.Model`.

    Args:
        name: a Python identifier; the log joint receives it as a keyword argument.
        shape: the event shape of one draw, e.g. ``()`` for a scalar, ``(8,)`` for eight schools.
        support: where the variable lives (see :func:`varinf.models.constraints.as_constraint`).

    Example:
        >>> Latent("tau", (), "positive")
        Latent(name='tau', shape=(), support=GreaterThan(lower_bound=0.0))
    """

    name: str
    shape: tuple[int, ...] = ()
    support: constraints.Constraint = field(default=constraints.real)

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"latent name {self.name!r} is not a Python identifier")
        shape = (self.shape,) if isinstance(self.shape, int) else tuple(int(s) for s in self.shape)
        if any(s < 1 for s in shape):
            raise ValueError(f"latent {self.name!r}: shape {shape} has a non-positive dimension")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "support", as_constraint(self.support))
