r"""The LDA local (E-) step for all documents at once (Blei, Ng & Jordan 2003; Hoffman et al. 2010, Alg. 1).

For fixed topics :math:`q(\beta_k) = \mathrm{Dir}(\lambda_k)`, each document alternates

.. math::

    \phi_{dwk} \propto \exp\{\mathbb E\log\theta_{dk} + \mathbb E\log\beta_{kw}\}, \qquad
    \gamma_{dk} = \alpha_k + \textstyle\sum_w n_{dw}\phi_{dwk},

until the mean absolute change of :math:`\gamma_d` is below ``tol``. :math:`\phi` is never stored: with
:math:`\Phi_{dw} = \sum_k e^{\mathbb E\log\theta_{dk}} e^{\mathbb E\log\beta_{kw}}` the update is
:math:`\gamma_d = \alpha + e^{\mathbb E\log\theta_d} \odot \sum_w (n_{dw}/\Phi_{dw})\, e^{\mathbb E\log\beta_{\cdot w}}`.
All documents advance together as sparse-dense products over the nonzero entries (torch CSR
``sampled_addmm`` for :math:`\Phi`, CSR @ dense for the sums); converged documents are dropped
from the working set as it shrinks.

Both exponentials are shifted (per word and per document, by their max over topics) before ``exp``:
:math:`\phi` and the updates are invariant to these shifts, and float32 no longer underflows for small
priors (:math:`\psi(0.01) \approx -100`).

The returned local bound, with :math:`\phi` optimal for the final :math:`\gamma`, is

.. math::

    \sum_{d,w} n_{dw}\log\sum_k e^{\mathbb E\log\theta_{dk} + \mathbb E\log\beta_{kw}}
    - \sum_d \mathrm{KL}\big(\mathrm{Dir}(\gamma_d)\,\|\,\mathrm{Dir}(\alpha)\big)\quad\text{(nats)}.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Dirichlet, kl_divergence

from .counts import DocTermCounts

__all__ = ["LDALocalResult", "lda_e_step"]


@dataclass(frozen=True)
class LDALocalResult:
    """Outcome of :func:`lda_e_step`.

    Attributes:
        gamma: ``(n_docs, K)`` variational Dirichlet parameters of the document-topic proportions.
        topic_word_stats: ``(K, V)`` expected counts :math:`\\sum_d n_{dw}\\phi_{dwk}` (``None`` if not asked).
        log_lik: scalar (float64) :math:`\\sum n_{dw}\\log\\sum_k\\exp(\\ldots)`, nats.
        doc_kl: scalar (float64) :math:`\\sum_d \\mathrm{KL}(q(\\theta_d)\\|p(\\theta_d))`, nats.
        n_iter: inner iterations taken by the slowest document.
    """

    gamma: Tensor
    topic_word_stats: Tensor | None
    log_lik: Tensor
    doc_kl: Tensor
    n_iter: int

    @property
    def bound(self) -> Tensor:
        """The documents' share of the ELBO (nats), given the topics."""
        return self.log_lik - self.doc_kl


def _shifted_exp_elog_theta(gamma: Tensor) -> tuple[Tensor, Tensor]:
    """``exp(E log theta - shift)`` and ``shift`` (``(n, 1)``, the row max)."""
    e = torch.digamma(gamma) - torch.digamma(gamma.sum(-1, keepdim=True))
    shift = e.amax(-1, keepdim=True)
    return torch.exp(e - shift), shift


def lda_e_step(
    counts: DocTermCounts,
    elog_beta: Tensor,
    alpha: Tensor,
    gamma: Tensor,
    *,
    tol: float = 1e-3,
    max_iter: int = 100,
    stats: bool = True,
) -> LDALocalResult:
    r"""Run the local updates for every document of ``counts``.

    Args:
        counts: the documents (``n_docs`` rows, ``V`` words).
        elog_beta: ``(K, V)`` :math:`\mathbb E\log\beta_{kw}` under :math:`q(\beta)`.
        alpha: ``(K,)`` or scalar document-topic prior.
        gamma: ``(n_docs, K)`` starting :math:`\gamma` (not modified).
        tol: per-document mean-absolute-change tolerance on :math:`\gamma_d`.
        max_iter: cap on the inner iterations.
        stats: whether to accumulate the M-step statistics ``topic_word_stats``.
    """
    n_topics = elog_beta.shape[0]
    alpha = torch.as_tensor(alpha, dtype=gamma.dtype, device=gamma.device).expand(n_topics)
    word_shift = elog_beta.amax(0)
    beta_k = torch.exp(elog_beta - word_shift).contiguous()  # (K, V), fixed during the E-step
    beta_w = beta_k.T.contiguous()  # (V, K)
    tiny = torch.finfo(gamma.dtype).tiny
    gamma = gamma.clone()

    active = None  # None = every document
    work = counts  # the unconverged documents' rows
    n_at_compaction = counts.n_docs
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (n_iter is reported)
        g = gamma if active is None else gamma[active]
        etheta, _ = _shifted_exp_elog_theta(g)
        phinorm = work.sampled_dot(etheta, beta_k).clamp_min(tiny)
        new = alpha + etheta * work.matmul(work.count / phinorm, beta_w)
        still = (new - g).abs().mean(-1) >= tol
        if active is None:
            gamma = new
        else:
            gamma[active] = new
        n_still = int(still.sum())
        if n_still == 0:
            break
        if n_still < 0.75 * n_at_compaction:  # shrink the working set to the unconverged documents
            idx = still.nonzero().squeeze(-1)
            work = work.select(idx)
            active = idx if active is None else active[idx]
            n_at_compaction = n_still

    # phi optimal for the final gamma: the bound and the M-step statistics use the same phi
    etheta, doc_shift = _shifted_exp_elog_theta(gamma)
    phinorm = counts.sampled_dot(etheta, beta_k).clamp_min(tiny)
    log_terms = phinorm.log() + word_shift[counts.word] + doc_shift[counts.doc, 0]
    log_lik = (counts.count * log_terms).sum(dtype=torch.float64)
    topic_word = None
    if stats:
        topic_word = (counts.matmul_t(counts.count / phinorm, etheta) * beta_w).T
    prior = Dirichlet(alpha.expand_as(gamma), validate_args=False)
    doc_kl = kl_divergence(Dirichlet(gamma, validate_args=False), prior).sum(dtype=torch.float64)
    return LDALocalResult(gamma, topic_word, log_lik, doc_kl, n_iter)
