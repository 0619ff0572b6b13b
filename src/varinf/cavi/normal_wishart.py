r"""The Normal-Wishart distribution, the conjugate prior of a Gaussian with unknown mean and precision.

.. math::

    p(\mu, \Lambda) = \mathcal N\!\big(\mu \mid m, (\beta\Lambda)^{-1}\big)\;\mathcal W(\Lambda \mid W, \nu),
    \qquad \mathbb E[\Lambda] = \nu W.

A torch ``Distribution`` has one value tensor, so a draw packs both blocks into shape ``(..., D + 1, D)``::

    value[..., 0, :]  = mu       (D,)
    value[..., 1:, :] = Lambda   (D, D), symmetric positive definite

Use :func:`pack` / :func:`unpack` rather than indexing by hand. The KL divergence between two
Normal-Wisharts is registered in :mod:`varinf.cavi.kl` (Bishop 2006, §10.2; Murphy 2007,
"Conjugate Bayesian analysis of the Gaussian distribution").

Example::

    >>> import torch
    >>> from varinf.cavi import NormalWishart
    >>> p = NormalWishart(torch.zeros(2), torch.tensor(1.0), torch.tensor(4.0), torch.eye(2))
    >>> p.sample((5,)).shape
    torch.Size([5, 3, 2])
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Chi2, Distribution, MultivariateNormal, Wishart, constraints

from ..utils.torch_private import validates

__all__ = ["NormalWishart", "bartlett_sample", "expected_logdet", "logdet_tril", "mvdigamma", "pack", "unpack"]


def broadcast_shapes(*shapes) -> torch.Size:
    """``torch.broadcast_shapes`` without its first-call cost (torch 2.13 routes it through a sympy import)."""
    return torch.Size(np.broadcast_shapes(*(tuple(s) for s in shapes)))


def bartlett_sample(df: Tensor, scale_tril: Tensor, sample_shape=()) -> Tensor:
    r"""Wishart draws :math:`L A A^\top L^\top` by the Bartlett decomposition, shape ``(*sample_shape, *batch, D, D)``.

    :math:`A` is lower triangular with :math:`A_{ii} = \sqrt{\chi^2_{\nu - i}}` and standard normal entries
    below the diagonal. (torch 2.13's ``Wishart.rsample`` inverts its singular-sample test, so it redraws
    every valid sample ten times and warns "Singular sample detected"; this is the same sampler without that.)
    """
    d = scale_tril.shape[-1]
    batch = broadcast_shapes(df.shape, scale_tril.shape[:-2])
    shape = torch.Size(sample_shape) + batch
    dofs = df.expand(batch)[..., None] - torch.arange(d, dtype=df.dtype, device=df.device)
    a = torch.diag_embed(Chi2(dofs).sample(torch.Size(sample_shape)).sqrt())
    i, j = torch.tril_indices(d, d, offset=-1, device=df.device)
    a[..., i, j] = torch.randn(*shape, i.shape[0], dtype=df.dtype, device=df.device)
    chol = scale_tril @ a
    return chol @ chol.mT


def pack(mu: Tensor, precision: Tensor) -> Tensor:
    """``(..., D)`` mean and ``(..., D, D)`` precision -> ``(..., D + 1, D)`` Normal-Wishart value."""
    return torch.cat([mu.unsqueeze(-2), precision], dim=-2)


def unpack(value: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`pack`: ``(mu (..., D), Lambda (..., D, D))``."""
    return value[..., 0, :], value[..., 1:, :]


def mvdigamma(a: Tensor, d: int) -> Tensor:
    r"""Multivariate digamma :math:`\psi_D(a) = \sum_{i=0}^{D-1}\psi(a - i/2)` (derivative of ``torch.mvlgamma``)."""
    offsets = torch.arange(d, dtype=a.dtype, device=a.device) / 2
    return torch.digamma(a[..., None] - offsets).sum(-1)


def logdet_tril(scale_tril: Tensor) -> Tensor:
    """:math:`\\log|LL^\top|` from the Cholesky factor ``L`` ``(..., D, D)``."""
    return 2 * scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)


def expected_logdet(df: Tensor, scale_tril: Tensor) -> Tensor:
    r""":math:`\mathbb E_{\mathcal W(\Lambda|W,\nu)}\log|\Lambda| = \psi_D(\nu/2) + D\log 2 + \log|W|` (Bishop 10.65)."""
    d = scale_tril.shape[-1]
    return mvdigamma(df / 2, d) + d * math.log(2.0) + logdet_tril(scale_tril)


class NormalWishart(Distribution):
    r"""Normal-Wishart :math:`\mathcal N(\mu \mid m, (\beta\Lambda)^{-1})\,\mathcal W(\Lambda \mid W, \nu)`.

    Args:
        loc: :math:`m`, shape ``(..., D)``.
        mean_precision: :math:`\beta > 0`, shape ``(...)``.
        df: :math:`\nu > D - 1`, shape ``(...)``.
        scale_tril: lower Cholesky factor of the Wishart scale :math:`W`, shape ``(..., D, D)``.
    """

    arg_constraints: ClassVar[dict] = {
        "loc": constraints.real_vector,
        "mean_precision": constraints.positive,
        "df": constraints.positive,
        "scale_tril": constraints.lower_cholesky,
    }
    support = constraints.independent(constraints.real, 2)  # loose: the Lambda block must also be PD
    has_rsample = False

    def __init__(self, loc: Tensor, mean_precision: Tensor, df: Tensor, scale_tril: Tensor, validate_args=None):
        d = loc.shape[-1]
        if scale_tril.shape[-2:] != (d, d):
            raise ValueError(f"scale_tril must have shape (..., {d}, {d}) to match loc, got {tuple(scale_tril.shape)}")
        batch = broadcast_shapes(loc.shape[:-1], mean_precision.shape, df.shape, scale_tril.shape[:-2])
        self.loc = loc.expand(*batch, d)
        self.mean_precision = mean_precision.expand(batch)
        self.df = df.expand(batch)
        self.scale_tril = scale_tril.expand(*batch, d, d)
        super().__init__(batch_shape=batch, event_shape=torch.Size((d + 1, d)), validate_args=validate_args)
        if validates(self) and bool((self.df <= d - 1).any()):
            raise ValueError(f"df must exceed D - 1 = {d - 1}")

    @property
    def dim(self) -> int:
        return self.loc.shape[-1]

    @property
    def wishart(self) -> Wishart:
        """The marginal :math:`\\mathcal W(\\Lambda \\mid W, \\nu)`."""
        return Wishart(self.df, scale_tril=self.scale_tril, validate_args=False)

    @property
    def mean(self) -> Tensor:
        """Packed :math:`(\\mathbb E\\mu, \\mathbb E\\Lambda) = (m, \\nu W)`."""
        scale = self.scale_tril @ self.scale_tril.mT
        return pack(self.loc, self.df[..., None, None] * scale)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        d = self.dim
        return NormalWishart(
            self.loc.expand(*batch_shape, d),
            self.mean_precision.expand(batch_shape),
            self.df.expand(batch_shape),
            self.scale_tril.expand(*batch_shape, d, d),
            validate_args=False,
        )

    def sample(self, sample_shape=()) -> Tensor:
        sample_shape = torch.Size(sample_shape)
        with torch.no_grad():
            precision = bartlett_sample(self.df, self.scale_tril, sample_shape)
            precision = 0.5 * (precision + precision.mT)  # symmetric only up to rounding otherwise
            # mu = m + (beta Lambda)^{-1/2} z with Lambda = C C^T: C^{-T} z has covariance Lambda^{-1}
            chol = torch.linalg.cholesky(precision)
            z = torch.randn_like(precision[..., :1])
            mu = torch.linalg.solve_triangular(chol.mT, z, upper=True).squeeze(-1)
            return pack(self.loc + mu / self.mean_precision.sqrt()[..., None], precision)

    def log_prob(self, value: Tensor) -> Tensor:
        mu, precision = unpack(value)
        beta = self.mean_precision[..., None, None]
        gauss = MultivariateNormal(self.loc, precision_matrix=beta * precision, validate_args=False)
        return self.wishart.log_prob(precision) + gauss.log_prob(mu)

    def entropy(self) -> Tensor:
        # H = H[W] + E_W[H[N(m, (beta Lambda)^-1)]], with E log|Lambda| from the Wishart.
        d = self.dim
        e_logdet = expected_logdet(self.df, self.scale_tril)
        h_gauss = 0.5 * d * (1.0 + math.log(2 * math.pi)) - 0.5 * d * self.mean_precision.log() - 0.5 * e_logdet
        return self.wishart.entropy() + h_gauss
