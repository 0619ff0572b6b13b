r"""``DiagPlusLowRankNormal``: a Gaussian whose covariance is a diagonal plus a (possibly indefinite) low-rank update.

.. math::
    \Sigma = \mathrm{diag}(\alpha) + \beta\,\gamma\,\beta^\top,\qquad \alpha \in \mathbb{R}^D_{>0},\
    \beta \in \mathbb{R}^{D\times r},\ \gamma \in \mathbb{R}^{r\times r}\ \text{symmetric (not necessarily PSD)}

is the form of an L-BFGS inverse-Hessian estimate (Byrd, Nocedal & Schnabel 1994), which Pathfinder
(Zhang et al. 2022, arXiv:2108.03782, Algorithm 4) uses as a covariance. With the thin QR
:math:`\alpha^{-1/2}\beta = QR` and the Cholesky factor :math:`LL^\top = I + R\gamma R^\top` (r × r),

.. math::
    \Sigma = \alpha^{1/2} M M^\top \alpha^{1/2},\quad M = I + Q(L - I)Q^\top,\quad
    M^{-1} = I + Q(L^{-1} - I)Q^\top,\quad \log\det\Sigma = \textstyle\sum_i \log\alpha_i + 2\sum_j \log L_{jj},

so drawing, evaluating the density and the entropy cost :math:`O(Dr)` per draw after an :math:`O(Dr^2)`
set-up: the :math:`D \times D` matrix is never formed (``covariance_matrix`` does, on request).

Shapes: ``loc``, ``alpha``: ``(D,)``; ``Q``: ``(D, r)``; ``L``: ``(r, r)`` lower triangular; event shape ``(D,)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from .base import AbstractFamily

__all__ = ["DiagPlusLowRank", "DiagPlusLowRankNormal", "factor_diag_plus_lowrank"]

_LOG_2PI = math.log(2 * math.pi)


def factor_diag_plus_lowrank(alpha: Tensor, beta: Tensor, gamma: Tensor) -> tuple[Tensor, Tensor]:
    r"""``(Q, L)`` for :math:`\mathrm{diag}(\alpha) + \beta\gamma\beta^\top` (see the module docstring).

    Raises ``torch.linalg.LinAlgError`` when the matrix is not positive definite."""
    Q, R = torch.linalg.qr(beta * alpha.rsqrt()[:, None], mode="reduced")
    inner = torch.eye(R.shape[0], dtype=R.dtype, device=R.device) + R @ gamma @ R.T
    L = torch.linalg.cholesky(0.5 * (inner + inner.T))
    return Q, L


class DiagPlusLowRankNormal(Distribution):
    r""":math:`N(\mu, \alpha^{1/2} M M^\top \alpha^{1/2})`, :math:`M = I + Q(L-I)Q^\top`, event shape ``(D,)``."""

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc: Tensor, alpha: Tensor, Q: Tensor, L: Tensor, validate_args: bool | None = False):
        self.loc, self.alpha, self.Q, self.L = loc, alpha, Q, L
        self._sqrt_alpha = alpha.sqrt()
        super().__init__(torch.Size(), loc.shape[-1:], validate_args=validate_args)

    @classmethod
    def from_factors(cls, loc: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor) -> DiagPlusLowRankNormal:
        return cls(loc, alpha, *factor_diag_plus_lowrank(alpha, beta, gamma))

    # ------------------------------------------------------------------ moments
    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        inner = self.L @ self.L.T - torch.eye(self.L.shape[0], dtype=self.L.dtype, device=self.L.device)
        return self.alpha * (1 + ((self.Q @ inner) * self.Q).sum(-1))

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    @property
    def covariance_matrix(self) -> Tensor:
        """Dense ``(D, D)``: only for small D."""
        a = self._sqrt_alpha
        M = torch.eye(self.loc.shape[-1], dtype=a.dtype, device=a.device) + self.Q @ (self.L - torch.eye(
            self.L.shape[0], dtype=a.dtype, device=a.device)) @ self.Q.T  # fmt: skip
        S = a[:, None] * M
        return S @ S.T

    def log_det(self) -> Tensor:
        return self.alpha.log().sum() + 2 * self.L.diagonal().log().sum()

    # ------------------------------------------------------------------ draws and densities
    def _scale(self, u: Tensor) -> Tensor:
        """:math:`\\alpha^{1/2} M u` for ``u`` ``(*S, D)``."""
        c = u @ self.Q
        return self._sqrt_alpha * (u + (c @ self.L.T - c) @ self.Q.T)

    def rsample(self, sample_shape=torch.Size()) -> Tensor:
        u = torch.randn(self._extended_shape(sample_shape), dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + self._scale(u)

    def rsample_and_log_prob(self, sample_shape=torch.Size()) -> tuple[Tensor, Tensor]:
        u = torch.randn(self._extended_shape(sample_shape), dtype=self.loc.dtype, device=self.loc.device)
        lq = -0.5 * (u.square().sum(-1) + self.log_det() + u.shape[-1] * _LOG_2PI)
        return self.loc + self._scale(u), lq

    def log_prob(self, value: Tensor) -> Tensor:
        w = (value - self.loc) / self._sqrt_alpha
        c = w @ self.Q
        ci = torch.linalg.solve_triangular(self.L, c.unsqueeze(-1), upper=False).squeeze(-1)
        u = w + (ci - c) @ self.Q.T
        return -0.5 * (u.square().sum(-1) + self.log_det() + u.shape[-1] * _LOG_2PI)

    def entropy(self) -> Tensor:
        D = self.loc.shape[-1]
        return 0.5 * (D * (1 + _LOG_2PI) + self.log_det())


class DiagPlusLowRank(AbstractFamily):
    """A fixed :class:`DiagPlusLowRankNormal` as a family module (buffers, no parameters): what Pathfinder returns."""

    def __init__(self, loc: Tensor, alpha: Tensor, Q: Tensor, L: Tensor):
        super().__init__()
        self.dim = int(loc.shape[-1])
        for k, v in (("loc", loc), ("alpha", alpha), ("Q", Q), ("L", L)):
            self.register_buffer(k, v.detach().clone())

    def forward(self, c: Tensor | None = None) -> DiagPlusLowRankNormal:
        return DiagPlusLowRankNormal(self.loc, self.alpha, self.Q, self.L)
