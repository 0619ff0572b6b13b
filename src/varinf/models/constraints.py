"""Supports for latent variables, and their maps to unconstrained space.

Every support is a :class:`torch.distributions.constraints.Constraint`; the bijection from
unconstrained space is ``torch.distributions.transform_to(constraint)`` (ADVI, Kucukelbir et al. 2017,
arXiv:1603.00788). torch lacks ordered vectors, so they are added here through
``transform_to.register`` rather than a parallel hierarchy.

Strings accepted by :func:`as_constraint`::

    "real", "positive", "unit_interval", "simplex", "ordered", "positive_ordered",
    "lower_cholesky", "corr_cholesky", "positive_definite",
    ("greater_than", lo), ("less_than", hi), ("interval", lo, hi)
"""

from __future__ import annotations

import torch
from torch.distributions import constraints, transform_to
from torch.distributions.transforms import ComposeTransform, ExpTransform, Transform

__all__ = ["OrderedTransform", "as_constraint", "ordered_vector", "positive_ordered_vector"]


class _OrderedVector(constraints.Constraint):
    """Strictly increasing real vectors (last dimension)."""

    event_dim = 1

    def check(self, value):
        return (value[..., 1:] > value[..., :-1]).all(-1) & torch.isfinite(value).all(-1)

    def __repr__(self):
        return "ordered_vector"


class _PositiveOrderedVector(_OrderedVector):
    """Strictly increasing positive vectors (last dimension)."""

    def check(self, value):
        return super().check(value) & (value[..., 0] > 0)

    def __repr__(self):
        return "positive_ordered_vector"


ordered_vector = _OrderedVector()
positive_ordered_vector = _PositiveOrderedVector()


class OrderedTransform(Transform):
    r"""R^K -> ordered vectors: :math:`y_1 = x_1,\ y_k = y_{k-1} + e^{x_k}` (Stan's ``ordered``).

    :math:`\log|\det J| = \sum_{k\ge 2} x_k`.
    """

    domain = constraints.real_vector
    codomain = ordered_vector
    bijective = True

    def __eq__(self, other):
        return isinstance(other, OrderedTransform)

    def _call(self, x):
        return torch.cat([x[..., :1], x[..., 1:].exp()], dim=-1).cumsum(-1)

    def _inverse(self, y):
        return torch.cat([y[..., :1], (y[..., 1:] - y[..., :-1]).log()], dim=-1)

    def log_abs_det_jacobian(self, x, y):
        return x[..., 1:].sum(-1)


@transform_to.register(_OrderedVector)
def _to_ordered(constraint):
    if isinstance(constraint, _PositiveOrderedVector):
        # exp is increasing, so exp(ordered) is positive and ordered.
        return ComposeTransform([OrderedTransform(), ExpTransform()])
    return OrderedTransform()


_NAMED = {
    "real": constraints.real,
    "positive": constraints.positive,
    "nonnegative": constraints.positive,  # a continuous density never puts mass on exactly 0
    "unit_interval": constraints.unit_interval,
    "simplex": constraints.simplex,
    "ordered": ordered_vector,
    "positive_ordered": positive_ordered_vector,
    "lower_cholesky": constraints.lower_cholesky,
    "corr_cholesky": constraints.corr_cholesky,
    "positive_definite": constraints.positive_definite,
}
_PARAMETRIC = {
    "greater_than": constraints.greater_than,
    "lower": constraints.greater_than,
    "less_than": constraints.less_than,
    "upper": constraints.less_than,
    "interval": constraints.interval,
}


def as_constraint(support) -> constraints.Constraint:
    """Turn ``support`` (a Constraint, a name, or a ``(name, *bounds)`` tuple) into a Constraint."""
    if isinstance(support, constraints.Constraint):
        return support
    if isinstance(support, str) and support in _NAMED:
        return _NAMED[support]
    if isinstance(support, tuple) and support and support[0] in _PARAMETRIC:
        return _PARAMETRIC[support[0]](*support[1:])
    raise ValueError(
        f"unknown support {support!r}; use a torch.distributions.constraints object, one of "
        f"{sorted(_NAMED)}, or a tuple like ('interval', lo, hi), ('greater_than', lo), ('less_than', hi)"
    )
