r"""Conjugate exponential-family core shared by the CAVI/SVI models.

A global latent :math:`\theta` with a conjugate prior :math:`p(\theta) \propto \exp\langle\eta_0, t(\theta)\rangle`
and local terms :math:`p(x_n, z_n \mid \theta) \propto \exp\langle s(x_n, z_n), t(\theta)\rangle` has the
optimal mean-field factor (Blei, Kucukelbir & McAuliffe 2017, arXiv:1601.00670, §4;
Hoffman, Blei, Wang & Paisley 2013, arXiv:1206.7051)

.. math::

    \text{CAVI:}\quad \eta \leftarrow \eta_0 + \textstyle\sum_n \mathbb E_q[s(x_n, z_n)], \qquad
    \text{SVI:}\quad \eta \leftarrow (1-\rho_t)\,\eta + \rho_t\big(\eta_0 + \tfrac{N}{|B|}\textstyle\sum_{n\in B}
    \mathbb E_q[s(x_n, z_n)]\big).

Both are linear in :math:`\eta`, so a :class:`AbstractConjugate` stores its parameters in *pseudo-count*
coordinates, an affine image of the natural parameters (``update`` adds statistics, ``blend`` takes convex
combinations; an affine shift commutes with both). Local updates only need the expected sufficient
statistics :math:`\mathbb E_q[t(\theta)]` (``expected_stats``); KL terms of the bound come from
``torch.distributions.kl_divergence`` on ``distribution()``.

Example::

    >>> import torch
    >>> from varinf.cavi import ConjugateDirichlet
    >>> prior = ConjugateDirichlet(torch.ones(3))
    >>> post = prior.update(torch.tensor([5.0, 0.0, 1.0]))
    >>> post.concentration
    tensor([6., 1., 2.])
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Self

import torch
from torch import Tensor
from torch.distributions import Dirichlet, Distribution, kl_divergence

from .kl import mvdigamma
from .normal_wishart import NormalWishart

__all__ = ["AbstractConjugate", "ConjugateDirichlet", "ConjugateNormalWishart", "NormalWishartStats"]


class AbstractConjugate(ABC):
    """A conjugate prior or posterior stored by (pseudo-count) natural parameters, a tuple of tensors."""

    natural: tuple[Tensor, ...]

    def __init__(self, *natural: Tensor):
        self.natural = tuple(natural)

    def update(self, *stats: Tensor) -> Self:
        """The CAVI update: these parameters plus summed expected sufficient statistics of the data."""
        return type(self)(*(a + b for a, b in zip(self.natural, stats, strict=True)))

    def blend(self, target: AbstractConjugate, rho: float) -> Self:
        """The SVI step :math:`(1-\\rho)\\eta + \\rho\\,\\hat\\eta` towards the noisy CAVI target."""
        return type(self)(*((1 - rho) * a + rho * b for a, b in zip(self.natural, target.natural, strict=True)))

    def kl(self, prior: AbstractConjugate) -> Tensor:
        """:math:`\\mathrm{KL}(q \\| p)` per batch element (nats), via the registered torch KL."""
        return kl_divergence(self.distribution(), prior.distribution())

    @abstractmethod
    def distribution(self) -> Distribution:
        """The equivalent ``torch.distributions`` object."""

    @abstractmethod
    def expected_stats(self):
        """:math:`\\mathbb E_q[t(\\theta)]`, what the local (E-step) updates consume."""


class ConjugateDirichlet(AbstractConjugate):
    r"""Dirichlet(:math:`\alpha`), stored as :math:`\alpha` (natural parameter :math:`\alpha - 1`).

    ``concentration``: ``(..., K)``; the last axis is the simplex. Expected sufficient statistic:
    :math:`\mathbb E\log\theta_k = \psi(\alpha_k) - \psi(\sum_j \alpha_j)`.
    """

    @property
    def concentration(self) -> Tensor:
        return self.natural[0]

    def distribution(self) -> Dirichlet:
        return Dirichlet(self.concentration, validate_args=False)

    def expected_stats(self, index: Tensor | None = None) -> Tensor:
        """:math:`\\mathbb E\\log\\theta`, ``(..., K)``; with ``index``, only those coordinates (``(..., len(index))``),
        e.g. the words of one minibatch out of a large vocabulary."""
        a = self.concentration
        total = torch.digamma(a.sum(-1, keepdim=True))
        return torch.digamma(a if index is None else a.index_select(-1, index)) - total

    def mean(self) -> Tensor:
        return self.concentration / self.concentration.sum(-1, keepdim=True)


@dataclass(frozen=True)
class NormalWishartStats:
    r"""Expected sufficient statistics of :math:`(\mu, \Lambda)` under a Normal-Wishart (Bishop 10.64-10.65).

    Attributes (``K`` = batch of components, ``D`` = dimension):
        logdet: ``(K,)`` :math:`\mathbb E\log|\Lambda|`.
        precision: ``(K, D, D)`` :math:`\mathbb E\Lambda = \nu W`.
        precision_mean: ``(K, D)`` :math:`\mathbb E[\Lambda\mu] = \nu W m`.
        quad: ``(K,)`` :math:`\mathbb E[\mu^\top\Lambda\mu] = D/\beta + \nu m^\top W m`.
    """

    logdet: Tensor
    precision: Tensor
    precision_mean: Tensor
    quad: Tensor

    def expected_log_likelihood(self, x: Tensor) -> Tensor:
        r""":math:`\mathbb E\log\mathcal N(x_n \mid \mu_k, \Lambda_k^{-1})`, ``x``: ``(N, D)`` -> ``(N, K)``.

        :math:`= \tfrac12\mathbb E\log|\Lambda| - \tfrac D2\log 2\pi - \tfrac12\big(x^\top\mathbb E\Lambda\,x
        - 2x^\top\mathbb E[\Lambda\mu] + \mathbb E[\mu^\top\Lambda\mu]\big)`.
        """
        d = x.shape[-1]
        xpx = torch.einsum("nd,kde,ne->nk", x, self.precision, x)
        maha = xpx - 2 * x @ self.precision_mean.mT + self.quad
        return 0.5 * self.logdet - 0.5 * d * math.log(2 * math.pi) - 0.5 * maha


class ConjugateNormalWishart(AbstractConjugate):
    r"""Normal-Wishart over :math:`(\mu, \Lambda)`, stored as :math:`(\beta,\ \beta m,\ W^{-1} + \beta m m^\top,\ \nu)`.

    In these coordinates the posterior after weighted observations :math:`r_n, x_n` is the prior plus
    :math:`(\sum r_n,\ \sum r_n x_n,\ \sum r_n x_n x_n^\top,\ \sum r_n)` (Bishop 10.60-10.63 rewritten linearly).
    Shapes: ``beta`` ``(K,)``, ``beta_mean`` ``(K, D)``, ``scatter`` ``(K, D, D)``, ``df`` ``(K,)``.
    """

    @classmethod
    def from_moments(cls, mean: Tensor, mean_precision: Tensor, df: Tensor, inv_scale: Tensor) -> Self:
        """From :math:`m`, :math:`\\beta`, :math:`\\nu` and :math:`W^{-1}` (the usual parameters)."""
        beta = mean_precision
        scatter = inv_scale + beta[..., None, None] * mean[..., :, None] * mean[..., None, :]
        return cls(beta, beta[..., None] * mean, scatter, df)

    @property
    def mean_precision(self) -> Tensor:
        return self.natural[0]

    @property
    def mean(self) -> Tensor:
        return self.natural[1] / self.natural[0][..., None]

    @property
    def df(self) -> Tensor:
        return self.natural[3]

    @property
    def inv_scale(self) -> Tensor:
        """:math:`W^{-1}`, ``(K, D, D)``."""
        m = self.mean
        inv = self.natural[2] - self.natural[0][..., None, None] * m[..., :, None] * m[..., None, :]
        return 0.5 * (inv + inv.mT)

    def translate(self, shift: Tensor) -> Self:
        """The same distribution over :math:`(\\mu + \\text{shift}, \\Lambda)` (moving the data moves the means)."""
        return type(self).from_moments(self.mean + shift, self.mean_precision, self.df, self.inv_scale)

    def _inv_scale_tril(self) -> Tensor:
        tril, info = torch.linalg.cholesky_ex(self.inv_scale)
        if bool((info > 0).any()):
            raise RuntimeError(
                "Normal-Wishart scale lost positive definiteness (numerical breakdown); "
                "standardize the data or use float64"
            )
        return tril

    def scale(self) -> Tensor:
        """:math:`W`, ``(K, D, D)``."""
        return torch.cholesky_inverse(self._inv_scale_tril())

    def distribution(self) -> NormalWishart:
        tril = torch.linalg.cholesky(self.scale())
        return NormalWishart(self.mean, self.mean_precision, self.df, tril, validate_args=False)

    def expected_stats(self) -> NormalWishartStats:
        inv_tril = self._inv_scale_tril()
        w = torch.cholesky_inverse(inv_tril)
        d = w.shape[-1]
        m, nu, beta = self.mean, self.df, self.mean_precision
        logdet_w = -2 * inv_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        precision = nu[..., None, None] * w
        precision_mean = (precision @ m.unsqueeze(-1)).squeeze(-1)
        return NormalWishartStats(
            logdet=mvdigamma(nu / 2, d) + d * math.log(2.0) + logdet_w,
            precision=precision,
            precision_mean=precision_mean,
            quad=d / beta + (m * precision_mean).sum(-1),
        )
