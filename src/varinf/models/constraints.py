"""Supports for latent variables, and their maps to unconstrained space.

Every support is a :class:`torch.distributions.constraints.Constraint`; the bijection from
unconstrained space is ``torch.distributions.biject_to(constraint)`` (ADVI, Kucukelbir et al. 2017,
arXiv:1603.00788). We use ``biject_to``, torch's registry of *bijective* maps, rather than
``transform_to``: the latter maps R^K onto the simplex by softmax, which is not a bijection and has no
usable Jacobian. torch lacks ordered vectors and bijections onto Cholesky factors and covariance
matrices; they are added here through ``biject_to.register`` rather than a parallel hierarchy.

Strings accepted by :func:`as_constraint`::

    "real", "positive", "unit_interval", "simplex", "ordered", "positive_ordered",
    "lower_cholesky", "corr_cholesky", "positive_definite",
    ("greater_than", lo), ("less_than", hi), ("interval", lo, hi)
"""

from __future__ import annotations

import math

import torch
from torch.distributions import biject_to, constraints
from torch.distributions.transforms import ComposeTransform, Transform

__all__ = [
    "CholeskyOuterTransform",
    "LowerCholeskyVecTransform",
    "OrderedTransform",
    "PositiveOrderedTransform",
    "as_constraint",
    "ordered_vector",
    "positive_ordered_vector",
]


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


@biject_to.register(_OrderedVector)
def _to_ordered(constraint):
    return OrderedTransform()


class PositiveOrderedTransform(Transform):
    r"""R^K -> positive ordered vectors: :math:`y_k = \sum_{j \le k} e^{x_j}` (Stan's ``positive_ordered``).

    :math:`\log|\det J| = \sum_k x_k`. Not ``exp(ordered(x))``: that is a double exponential,
    :math:`y_k = \exp(x_1 + \sum_{2 \le j \le k} e^{x_j})`, which overflows once any :math:`x_j \gtrsim 6.5`
    (posteriordb's bball HMM reaches 8.5) and turns the log density into NaN.
    """

    domain = constraints.real_vector
    codomain = positive_ordered_vector
    bijective = True

    def __eq__(self, other):
        return isinstance(other, PositiveOrderedTransform)

    def _call(self, x):
        return x.exp().cumsum(-1)

    def _inverse(self, y):
        return torch.cat([y[..., :1], y[..., 1:] - y[..., :-1]], dim=-1).log()

    def log_abs_det_jacobian(self, x, y):
        return x.sum(-1)


@biject_to.register(_PositiveOrderedVector)
def _to_positive_ordered(constraint):
    return PositiveOrderedTransform()


def _side(n: int) -> int:
    k = round((math.sqrt(8 * n + 1) - 1) / 2)
    if k * (k + 1) // 2 != n:
        raise ValueError(f"{n} is not a triangular number k(k+1)/2")
    return k


class LowerCholeskyVecTransform(Transform):
    r"""R^{K(K+1)/2} -> lower-triangular K×K with positive diagonal :math:`e^{x}` on the diagonal.

    Rows of the lower triangle are filled in ``torch.tril_indices`` order; :math:`\log|\det J| = \sum x_{ii}`.
    """

    domain = constraints.real_vector
    codomain = constraints.lower_cholesky
    bijective = True

    def __eq__(self, other):
        return isinstance(other, LowerCholeskyVecTransform)

    def forward_shape(self, shape):
        k = _side(shape[-1])
        return torch.Size((*shape[:-1], k, k))

    def inverse_shape(self, shape):
        if len(shape) < 2 or shape[-1] != shape[-2]:
            raise ValueError(f"expected square matrices, got shape {tuple(shape)}")
        k = shape[-1]
        return torch.Size((*shape[:-2], k * (k + 1) // 2))

    def _call(self, x):
        k = _side(x.shape[-1])
        rows, cols = torch.tril_indices(k, k, device=x.device)
        diag = rows == cols
        vals = torch.where(diag, x.exp(), x)
        L = x.new_zeros(*x.shape[:-1], k, k)
        L[..., rows, cols] = vals
        return L

    def _inverse(self, y):
        k = y.shape[-1]
        rows, cols = torch.tril_indices(k, k, device=y.device)
        v = y[..., rows, cols]
        return torch.where(rows == cols, v.log(), v)

    def log_abs_det_jacobian(self, x, y):
        k = y.shape[-1]
        rows, cols = torch.tril_indices(k, k, device=x.device)
        return x[..., rows == cols].sum(-1)


class CholeskyOuterTransform(Transform):
    r"""Lower Cholesky factor :math:`L` -> :math:`\Sigma = LL^\top`.

    Jacobian of the map between the lower triangles: :math:`\log|\det J| = K\log 2 + \sum_i (K-i+1)\log L_{ii}`
    (1-based :math:`i`).
    """

    domain = constraints.lower_cholesky
    codomain = constraints.positive_definite
    bijective = True

    def __eq__(self, other):
        return isinstance(other, CholeskyOuterTransform)

    def _call(self, x):
        return x @ x.mT

    def _inverse(self, y):
        return torch.linalg.cholesky(y)

    def log_abs_det_jacobian(self, x, y):
        k = x.shape[-1]
        powers = torch.arange(k, 0, -1, dtype=x.dtype, device=x.device)
        return k * math.log(2.0) + (powers * x.diagonal(dim1=-2, dim2=-1).log()).sum(-1)


@biject_to.register(constraints.lower_cholesky)
def _to_lower_cholesky(constraint):
    return LowerCholeskyVecTransform()


@biject_to.register(constraints.positive_definite)
def _to_positive_definite(constraint):
    return ComposeTransform([LowerCholeskyVecTransform(), CholeskyOuterTransform()])


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
