r"""``DiagNormal``: a diagonal Gaussian over vectors, parametrized by ``loc`` and ``log_scale``.

Mathematically ``Independent(Normal(loc, exp(log_scale)), 1)``; written as its own small Distribution
because it sits on the hot path of every mean-field step: no argument broadcasting in ``__init__``,
``entropy`` straight from ``log_scale`` (no exp→log round trip), 4 ops per ``rsample``. KL divergences
to and from diagonal Gaussians are registered with ``torch.distributions.kl.register_kl``.

Shapes: ``loc``, ``log_scale``: ``(*batch, D)``; event shape ``(D,)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal, constraints
from torch.distributions.kl import register_kl

__all__ = ["DiagNormal"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class DiagNormal(Distribution):
    """:math:`N(\\mu, \\mathrm{diag}(e^{2\\ell}))` with event shape ``(D,)``."""

    arg_constraints = {"loc": constraints.real_vector, "log_scale": constraints.real_vector}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc: Tensor, log_scale: Tensor, validate_args: bool | None = False):
        if loc.shape != log_scale.shape:
            loc, log_scale = torch.broadcast_tensors(loc, log_scale)
        self.loc, self.log_scale = loc, log_scale
        super().__init__(loc.shape[:-1], loc.shape[-1:], validate_args=validate_args)

    @property
    def scale(self) -> Tensor:
        return self.log_scale.exp()

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def stddev(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        return (2 * self.log_scale).exp()

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape) + self.event_shape
        return DiagNormal(self.loc.expand(shape), self.log_scale.expand(shape))

    def rsample(self, sample_shape=torch.Size()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        eps = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + eps * self.log_scale.exp()

    def log_prob(self, value: Tensor) -> Tensor:
        z = (value - self.loc) * (-self.log_scale).exp()
        return -0.5 * z.square().sum(-1) - self.log_scale.sum(-1) - self.loc.shape[-1] * _HALF_LOG_2PI

    def entropy(self) -> Tensor:
        return self.log_scale.sum(-1) + self.loc.shape[-1] * (0.5 + _HALF_LOG_2PI)


def _kl_diag(m1, l1, m2, l2) -> Tensor:
    # KL(N(m1, s1^2) || N(m2, s2^2)) summed over the event dim, with l = log s
    var_ratio = (2 * (l1 - l2)).exp()
    t = ((m1 - m2) * (-l2).exp()).square()
    return 0.5 * (var_ratio + t - 1).sum(-1) - (l1 - l2).sum(-1)


def _as_diag(p: Independent):
    if not (isinstance(p.base_dist, Normal) and p.reinterpreted_batch_ndims == 1):
        raise NotImplementedError
    return p.base_dist.loc, p.base_dist.scale.log()


@register_kl(DiagNormal, DiagNormal)
def _kl_dd(p, q):
    return _kl_diag(p.loc, p.log_scale, q.loc, q.log_scale)


@register_kl(DiagNormal, Independent)
def _kl_di(p, q):
    m2, l2 = _as_diag(q)
    return _kl_diag(p.loc, p.log_scale, m2, l2)


@register_kl(Independent, DiagNormal)
def _kl_id(p, q):
    m1, l1 = _as_diag(p)
    return _kl_diag(m1, l1, q.loc, q.log_scale)
