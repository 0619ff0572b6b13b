r"""Analytic KL divergences torch does not ship, registered with ``torch.distributions.kl.register_kl``.

Torch 2.x already registers ``Dirichlet``-``Dirichlet``, ``Gamma``-``Gamma`` and
``MultivariateNormal``-``MultivariateNormal``; it has none for the Wishart. This module adds

* :math:`\mathrm{KL}(\mathcal W(\nu_p, V_p)\,\|\,\mathcal W(\nu_q, V_q))`
  :math:`= \tfrac{\nu_p-\nu_q}{2}\psi_D(\tfrac{\nu_p}{2}) - \log\Gamma_D(\tfrac{\nu_p}{2}) + \log\Gamma_D(\tfrac{\nu_q}{2})
  + \tfrac{\nu_q}{2}(\log|V_q| - \log|V_p|) + \tfrac{\nu_p}{2}(\operatorname{tr}(V_q^{-1}V_p) - D)`;
* Normal-Wishart: the Wishart KL plus
  :math:`\tfrac12\big[D(\tfrac{\beta_q}{\beta_p} - 1 - \log\tfrac{\beta_q}{\beta_p})
  + \beta_q\nu_p (m_p-m_q)^\top V_p (m_p-m_q)\big]`.

Import for its side effect (``import varinf.cavi`` does it). All results are in nats.

Example::

    >>> import torch
    >>> from torch.distributions import Wishart, kl_divergence
    >>> import varinf.cavi
    >>> p, q = Wishart(torch.tensor(5.0), torch.eye(2)), Wishart(torch.tensor(4.0), 2 * torch.eye(2))
    >>> kl_divergence(p, q).item() > 0
    True
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Wishart
from torch.distributions.kl import register_kl

from .normal_wishart import NormalWishart, broadcast_shapes, logdet_tril, mvdigamma

__all__ = ["kl_normal_wishart", "kl_wishart"]


def kl_wishart(df_p: Tensor, tril_p: Tensor, df_q: Tensor, tril_q: Tensor) -> Tensor:
    """KL(W(df_p, L_p L_p^T) || W(df_q, L_q L_q^T)) from Cholesky factors of the scale matrices."""
    d = tril_p.shape[-1]
    shape = broadcast_shapes(tril_p.shape, tril_q.shape)
    tril_p, tril_q = tril_p.expand(shape), tril_q.expand(shape)
    # tr(V_q^{-1} V_p) = ||L_q^{-1} L_p||_F^2
    trace = torch.linalg.solve_triangular(tril_q, tril_p, upper=False).pow(2).sum((-2, -1))
    return (
        0.5 * (df_p - df_q) * mvdigamma(df_p / 2, d)
        - torch.mvlgamma(df_p / 2, d)
        + torch.mvlgamma(df_q / 2, d)
        + 0.5 * df_q * (logdet_tril(tril_q) - logdet_tril(tril_p))
        + 0.5 * df_p * (trace - d)
    )


@register_kl(Wishart, Wishart)
def _kl_wishart_wishart(p: Wishart, q: Wishart) -> Tensor:
    return kl_wishart(p.df, p.scale_tril, q.df, q.scale_tril)


def kl_normal_wishart(p: NormalWishart, q: NormalWishart) -> Tensor:
    """KL(p || q) between Normal-Wisharts, shape = broadcast batch shape (nats)."""
    d = p.dim
    ratio = q.mean_precision / p.mean_precision
    # (m_p - m_q)^T V_p (m_p - m_q) = ||L_p^T (m_p - m_q)||^2
    delta = p.loc - q.loc
    quad = (delta.unsqueeze(-1) * p.scale_tril).sum(-2).pow(2).sum(-1)
    gauss = 0.5 * (d * (ratio - 1 - ratio.log()) + q.mean_precision * p.df * quad)
    return kl_wishart(p.df, p.scale_tril, q.df, q.scale_tril) + gauss


@register_kl(NormalWishart, NormalWishart)
def _kl_nw_nw(p: NormalWishart, q: NormalWishart) -> Tensor:
    return kl_normal_wishart(p, q)
