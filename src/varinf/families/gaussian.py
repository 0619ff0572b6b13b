r"""Gaussian families over :math:`\mathbb{R}^D`: mean-field, full-rank, low-rank-plus-diagonal.

Scales are parametrized on the log scale (ADVI's :math:`\omega = \log\sigma`); the full-rank Cholesky
factor has a log-parametrized diagonal. Initial scale ``init_scale`` (default 0.1, as NumPyro's
``AutoNormal``) keeps the first steps close to the initial point.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, LowRankMultivariateNormal, MultivariateNormal

from ..utils.torch_private import scale_tril_of, set_scale_tril
from .base import AbstractFamily
from .diag_normal import DiagNormal

__all__ = ["DEFAULT_RANK", "FullRank", "LowRank", "MeanField", "TrilNormal"]

DEFAULT_RANK = 5  # rank of a low-rank Gaussian when none is asked for (capped at the dimension)


def _init_loc(dim: int, loc: Tensor | None) -> Tensor:
    if loc is None:
        return torch.zeros(dim)
    loc = torch.as_tensor(loc, dtype=torch.get_default_dtype()).detach().clone()
    if loc.shape != (dim,):
        raise ValueError(f"loc must have shape ({dim},), got {tuple(loc.shape)}")
    return loc


class MeanField(AbstractFamily):
    r""":math:`q(z) = \prod_i N(z_i; m_i, \sigma_i^2)`, parameters ``loc`` and ``log_scale``.

    Example:
        >>> q = MeanField(3)()
        >>> q.rsample((5,)).shape, q.event_shape
        (torch.Size([5, 3]), torch.Size([3]))
    """

    def __init__(self, dim: int, loc: Tensor | None = None, init_scale: float = 0.1):
        super().__init__()
        self.dim = int(dim)
        self.loc = nn.Parameter(_init_loc(self.dim, loc))
        self.log_scale = nn.Parameter(torch.full((self.dim,), math.log(init_scale)))

    def forward(self, c: Tensor | None = None) -> DiagNormal:
        return DiagNormal(self.loc, self.log_scale)


class TrilNormal(MultivariateNormal):
    r"""``MultivariateNormal(loc, scale_tril=L)`` for one ``(D,)`` Gaussian, built for the hot path: no
    broadcasting in ``__init__``, ``rsample`` as one ``addmm``, the entropy from the given
    :math:`\log L_{ii}` (``log_diag``) without re-reading the diagonal. Everything else (``log_prob``,
    ``covariance_matrix``, KL registrations) is ``MultivariateNormal``'s."""

    def __init__(self, loc: Tensor, scale_tril: Tensor, log_diag: Tensor):
        self.loc = loc
        set_scale_tril(self, scale_tril)
        self.log_diag = log_diag
        Distribution.__init__(self, torch.Size(), loc.shape[-1:], validate_args=False)

    def rsample(self, sample_shape=torch.Size()) -> Tensor:
        eps = torch.randn((*sample_shape, self.loc.shape[-1]), dtype=self.loc.dtype, device=self.loc.device)
        if eps.dim() == 2:
            return torch.addmm(self.loc, eps, scale_tril_of(self).mT)
        return self.loc + eps @ scale_tril_of(self).mT

    def entropy(self) -> Tensor:
        return self.log_diag.sum(-1) + self.loc.shape[-1] * (0.5 + 0.5 * math.log(2 * math.pi))


class FullRank(AbstractFamily):
    r""":math:`q(z) = N(z; m, LL^\top)`, :math:`L` lower triangular with positive diagonal
    :math:`\exp(\ell_{ii})`. :math:`D + D(D+1)/2` parameters."""

    def __init__(self, dim: int, loc: Tensor | None = None, init_scale: float = 0.1):
        super().__init__()
        self.dim = int(dim)
        self.loc = nn.Parameter(_init_loc(self.dim, loc))
        self.log_diag = nn.Parameter(torch.full((self.dim,), math.log(init_scale)))
        self.off_diag = nn.Parameter(torch.zeros(self.dim, self.dim))

    def scale_tril(self) -> Tensor:
        return torch.tril(self.off_diag, -1) + torch.diag_embed(self.log_diag.exp())

    def forward(self, c: Tensor | None = None) -> TrilNormal:
        return TrilNormal(self.loc, self.scale_tril(), self.log_diag)


class LowRank(AbstractFamily):
    r""":math:`q(z) = N(z; m, WW^\top + \mathrm{diag}(d))`, :math:`W \in \mathbb{R}^{D\times r}`.

    Between mean-field (:math:`r=0`) and full-rank in cost: :math:`O(Dr)` parameters and
    :math:`O(Dr^2)` per log density. ``rank`` defaults to ``min(DEFAULT_RANK, dim)`` (the one default of every
    method that fits a low-rank Gaussian).
    """

    def __init__(self, dim: int, rank: int | None = None, loc: Tensor | None = None, init_scale: float = 0.1,
                 seed: int = 0):  # fmt: skip
        super().__init__()
        rank = min(DEFAULT_RANK, dim) if rank is None else rank
        if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= dim:
            raise ValueError(f"rank must be between 1 and dim={dim}, got {rank}")
        self.dim, self.rank = int(dim), int(rank)
        g = torch.Generator().manual_seed(seed)
        self.loc = nn.Parameter(_init_loc(self.dim, loc))
        # small random factor: exactly zero would make every column's gradient identical
        self.cov_factor = nn.Parameter(0.01 * init_scale * torch.randn(self.dim, self.rank, generator=g))
        self.log_diag_scale = nn.Parameter(torch.full((self.dim,), math.log(init_scale)))

    def forward(self, c: Tensor | None = None) -> LowRankMultivariateNormal:
        return LowRankMultivariateNormal(
            self.loc, self.cov_factor, (2 * self.log_diag_scale).exp(), validate_args=False
        )
