r"""``Preconditioned``: a family fitted in whitened coordinates.

:math:`u = s + A w`, :math:`w \sim q_w` (the base family), with :math:`A` diagonal ``(D,)`` or lower
triangular ``(D, D)``. The optimizer then works on :math:`q_w`, whose target is close to
:math:`N(0, I)` when :math:`s, A` come from a Laplace approximation: every direction has unit scale, so
Adam's step sizes (0.3 … 0.01) mean the same thing for every model, however ill-conditioned its
posterior is in :math:`u`. A diagonal :math:`A` keeps a mean-field base mean-field in :math:`u`.

The returned distribution is over :math:`u` and of the same kind as the base where the pushforward stays
in the family (diagonal, low-rank or full-rank Gaussian); otherwise an :class:`AffinePushforward`, which keeps
the base's one-pass ``rsample_and_log_prob`` (zuko flows: no inverse pass per step).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import (
    AffineTransform,
    Distribution,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Transform,
    TransformedDistribution,
    constraints,
)

from ..utils.torch_private import scale_tril_of
from .base import AbstractFamily
from .diag_normal import DiagNormal
from .gaussian import TrilNormal

__all__ = ["AffinePushforward", "Preconditioned", "TrilAffine"]


class Preconditioned(AbstractFamily):
    """Base family ``base`` over :math:`w`, pushed through :math:`u = s + A w` (``shift``, ``scale``)."""

    def __init__(self, base: AbstractFamily, shift: Tensor, scale: Tensor):
        super().__init__()
        D = shift.shape[-1]
        if scale.shape not in ((D,), (D, D)):
            raise ValueError(f"scale must be ({D},) or ({D}, {D}), got {tuple(scale.shape)}")
        self.base, self.dim = base, int(D)
        self.register_buffer("shift", shift.detach().clone())
        self.register_buffer("scale", scale.detach().clone())
        self.register_buffer("log_scale", torch.empty(0), persistent=False)
        self._cache_log_scale()
        self.register_load_state_dict_post_hook(lambda module, _keys: module._cache_log_scale())

    def _cache_log_scale(self) -> None:
        # log |A| (diagonal) or log A_ii (triangular), computed once per A (here and after load_state_dict):
        # it shifts q's log-scale/entropy every step
        A = self.scale
        self.log_scale = (A.abs() if A.dim() == 1 else A.diagonal()).log().detach().clone()
        self.log_scale_sum = float(self.log_scale.sum())  # log |det A|

    @property
    def diagonal(self) -> bool:
        return self.scale.dim() == 1

    def forward(self, c: Tensor | None = None) -> Distribution:
        q = self.base(c)
        s, A = self.shift, self.scale
        if self.diagonal:
            if isinstance(q, DiagNormal):
                return DiagNormal(torch.addcmul(s, A, q.loc), q.log_scale + self.log_scale)
            if isinstance(q, LowRankMultivariateNormal):
                return LowRankMultivariateNormal(s + A * q.loc, A[:, None] * q.cov_factor, A.square() * q.cov_diag,
                                                 validate_args=False)  # fmt: skip
            if isinstance(q, MultivariateNormal):
                return MultivariateNormal(s + A * q.loc, scale_tril=A[:, None] * q.scale_tril, validate_args=False)
            return AffinePushforward(q, AffineTransform(s, A, event_dim=1), self.log_scale_sum)
        if isinstance(q, TrilNormal):  # the triangular product keeps log-diagonals additive
            return TrilNormal(torch.addmv(s, A, q.loc), A @ scale_tril_of(q), q.log_diag + self.log_scale)
        if isinstance(q, MultivariateNormal):
            return MultivariateNormal(s + q.loc @ A.T, scale_tril=A @ q.scale_tril, validate_args=False)
        return AffinePushforward(q, TrilAffine(s, A), self.log_scale_sum)


class AffinePushforward(TransformedDistribution):
    r"""``TransformedDistribution(q, [affine])`` with a constant :math:`\log|\det A|` and a one-pass
    ``rsample_and_log_prob`` when the base has one (draw and density together, no inverse of the base)."""

    def __init__(self, base: Distribution, affine: Transform, log_det: float):
        super().__init__(base, [affine], validate_args=False)
        self.affine, self.log_det = affine, float(log_det)

    def rsample_and_log_prob(self, sample_shape=torch.Size()) -> tuple[Tensor, Tensor]:
        if hasattr(self.base_dist, "rsample_and_log_prob"):
            w, lq = self.base_dist.rsample_and_log_prob(sample_shape)
        else:
            w = self.base_dist.rsample(sample_shape)
            lq = self.base_dist.log_prob(w)
        return self.affine(w), lq - self.log_det

    def log_prob(self, value: Tensor) -> Tensor:
        return self.base_dist.log_prob(self.affine.inv(value)) - self.log_det


class TrilAffine(Transform):
    r""":math:`u = s + A w` with :math:`A` lower triangular ``(D, D)`` (positive diagonal): a bijection of
    :math:`\mathbb{R}^D` with :math:`\log|\det J| = \sum_i \log A_{ii}`, inverse by a triangular solve."""

    domain = constraints.independent(constraints.real, 1)
    codomain = constraints.independent(constraints.real, 1)
    bijective = True
    sign = +1

    def __init__(self, shift: Tensor, tril: Tensor):
        super().__init__(cache_size=1)
        self.shift, self.tril = shift, tril

    def _call(self, x: Tensor) -> Tensor:
        return self.shift + x @ self.tril.T

    def _inverse(self, y: Tensor) -> Tensor:
        r = (y - self.shift).unsqueeze(-1)
        return torch.linalg.solve_triangular(self.tril, r, upper=False).squeeze(-1)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return self.tril.diagonal().log().sum().expand(x.shape[:-1])
