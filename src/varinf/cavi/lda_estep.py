r"""The LDA local (E-) step for all documents at once (Blei, Ng & Jordan 2003; Hoffman et al. 2010, Alg. 1).

For fixed topics :math:`q(\beta_k) = \mathrm{Dir}(\lambda_k)`, each document alternates

.. math::

    \phi_{dwk} \propto \exp\{\mathbb E\log\theta_{dk} + \mathbb E\log\beta_{kw}\}, \qquad
    \gamma_{dk} = \alpha_k + \textstyle\sum_w n_{dw}\phi_{dwk},

until the mean absolute change of :math:`\gamma_d` is below ``tol``; a converged document stops there
(as in a per-document loop), the others go on. :math:`\phi` is never stored: with
:math:`\Phi_{dw} = \sum_k e^{\mathbb E\log\theta_{dk}} e^{\mathbb E\log\beta_{kw}}` the update is
:math:`\gamma_d = \alpha + e^{\mathbb E\log\theta_d} \odot \sum_w (n_{dw}/\Phi_{dw})\, e^{\mathbb E\log\beta_{\cdot w}}`.
Documents advance together in length-sorted, padded blocks (:class:`~varinf.cavi.lda_layout.PaddedDocs`):
both sums are batched GEMVs over each document's topic columns, gathered once per E-step; converged
documents are dropped from a block's working set as it shrinks.

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
from .expfam import ConjugateDirichlet
from .lda_fixed_point import WorkingSet, fixed_point, squarem
from .lda_layout import DocBlock, PaddedDocs

__all__ = ["SOLVERS", "LDALocalResult", "lda_e_step"]

SOLVERS = {"fixed_point": fixed_point, "squarem": squarem}


@dataclass(frozen=True)
class LDALocalResult:
    """Outcome of :func:`lda_e_step`.

    Attributes:
        gamma: ``(n_docs, K)`` variational Dirichlet parameters of the document-topic proportions.
        topic_word_stats: ``(K, V)`` expected counts :math:`\\sum_d n_{dw}\\phi_{dwk}` (``None`` if not asked).
        doc_log_lik: ``(n_docs,)`` float64 :math:`\\sum_w n_{dw}\\log\\sum_k\\exp(\\mathbb E\\log\\theta_{dk}
            + \\mathbb E\\log\\beta_{kw})`, nats.
        doc_kl: ``(n_docs,)`` float64 :math:`\\mathrm{KL}(q(\\theta_d)\\|p(\\theta_d))`, nats.
        n_iter: inner iterations taken by the slowest document.
    """

    gamma: Tensor
    topic_word_stats: Tensor | None
    doc_log_lik: Tensor
    doc_kl: Tensor
    n_iter: int

    @property
    def doc_bound(self) -> Tensor:
        """``(n_docs,)`` each document's share of the ELBO (nats), given the topics."""
        return self.doc_log_lik - self.doc_kl

    @property
    def bound(self) -> Tensor:
        """The documents' share of the ELBO (nats, float64 scalar), given the topics."""
        return self.doc_bound.sum()


def lda_e_step(
    counts: DocTermCounts | PaddedDocs,
    topics: ConjugateDirichlet,
    alpha: Tensor,
    gamma: Tensor,
    *,
    tol: float = 1e-3,
    max_iter: int = 100,
    stats: bool = True,
    previous: Tensor | None = None,
    solver: str = "squarem",
    block_entries: int = 2**19,
) -> LDALocalResult:
    r"""Run the local updates for every document of ``counts``.

    Args:
        counts: the documents (``n_docs`` rows, ``V`` words), or their :class:`PaddedDocs` layout (build it
            once with ``PaddedDocs.from_counts`` when the same documents are visited every pass).
        topics: :math:`q(\beta) = \mathrm{Dir}(\lambda)`, concentration ``(K, V)``; only the columns of words
            present in ``counts`` are touched (a minibatch of a large vocabulary stays cheap).
        alpha: ``(K,)`` or scalar document-topic prior.
        gamma: ``(n_docs, K)`` starting :math:`\gamma` (not modified).
        tol: per-document mean-absolute-change tolerance on :math:`\gamma_d`.
        max_iter: cap on the inner iterations (0: only evaluate ``gamma``).
        stats: whether to accumulate the M-step statistics ``topic_word_stats``.
        solver: ``"squarem"`` (accelerated) or ``"fixed_point"`` (plain iteration, as scikit-learn), see
            :mod:`varinf.cavi.lda_fixed_point`; both stop a document at the same ``tol``.
        previous: optional ``(n_docs, K)``; each document keeps whichever of its new :math:`\gamma_d` and
            ``previous[d]`` has the higher bound under these topics (batch CAVI restarts the local step
            each pass yet stays monotone this way).
        block_entries: (padded slot, topic) pairs per block when ``counts`` is not yet laid out: the
            ``(m, L, K)`` topic columns of a block stay in cache (documents are independent given the topics).
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {sorted(SOLVERS)}, got {solver!r}")
    n_topics = topics.concentration.shape[0]
    docs = counts if isinstance(counts, PaddedDocs) else PaddedDocs.from_counts(counts, n_topics, block_entries)
    alpha = torch.as_tensor(alpha, dtype=gamma.dtype, device=gamma.device).expand(n_topics)
    elog_beta = topics.expected_stats(docs.present)  # (K, P): only the words that occur
    word_shift = elog_beta.amax(0)
    beta_w = torch.exp(elog_beta - word_shift).T.contiguous()  # (P, K), fixed during the E-step

    gamma = gamma.clone()
    log_lik = torch.zeros(docs.n_docs, dtype=torch.float64, device=gamma.device)
    etheta = gamma.new_zeros(docs.n_docs, n_topics) if stats else None
    ratio = docs.counts.count.new_zeros(docs.counts.nnz) if stats else None  # n_dw / Phi_dw at the nonzeros
    gamma[docs.empty] = alpha  # no words to explain: the prior
    n_iter = 0
    for block in docs.blocks:
        beta = beta_w.index_select(0, block.word.view(-1)).view(*block.word.shape, n_topics)
        work = WorkingSet(beta, block.count, block.chunk_doc, alpha)
        g, block_iter = SOLVERS[solver](work, gamma[block.docs], tol, max_iter)
        n_iter = max(n_iter, block_iter)
        best = _evaluate(block, beta, word_shift, g)
        if previous is not None:
            best = best.better(_evaluate(block, beta, word_shift, previous[block.docs]), block, alpha)
        gamma[block.docs] = best.gamma
        log_lik[block.docs] = best.log_lik
        if stats:
            etheta[block.docs] = best.etheta
            ratio[block.entry] = (block.count / best.phinorm).view(-1)[block.slot]
    topic_word = None
    if stats:  # sum_d n_dw phi_dwk = beta_kw sum_d etheta_dk n_dw / Phi_dw: one sparse product
        local = docs.counts.matmul_t(ratio, etheta) * beta_w  # (P, K)
        topic_word = gamma.new_zeros(n_topics, docs.n_words).index_copy_(1, docs.present, local.T)
    return LDALocalResult(gamma, topic_word, log_lik, doc_kl(gamma, alpha), n_iter)


@dataclass(frozen=True)
class _BlockFit:
    """A block's gamma with the optimal phi's normalizer and per-document log-likelihood terms."""

    gamma: Tensor
    etheta: Tensor
    phinorm: Tensor
    log_lik: Tensor

    def better(self, other: _BlockFit, block: DocBlock, alpha: Tensor) -> _BlockFit:
        """Per document, whichever of ``self`` and ``other`` has the higher bound."""
        keep = (other.log_lik - doc_kl(other.gamma, alpha)) > (self.log_lik - doc_kl(self.gamma, alpha))
        if not bool(keep.any()):
            return self
        keep_chunk = block.per_chunk(keep)
        return _BlockFit(
            torch.where(keep[:, None], other.gamma, self.gamma),
            torch.where(keep[:, None], other.etheta, self.etheta),
            torch.where(keep_chunk[:, None], other.phinorm, self.phinorm),
            torch.where(keep, other.log_lik, self.log_lik),
        )


def _evaluate(block: DocBlock, beta: Tensor, word_shift: Tensor, gamma: Tensor) -> _BlockFit:
    """phi optimal for ``gamma``: the bound and the M-step statistics then use the same phi."""
    elog_theta = torch.digamma(gamma) - torch.digamma(gamma.sum(-1, keepdim=True))
    doc_shift = elog_theta.amax(-1, keepdim=True)
    etheta = torch.exp(elog_theta - doc_shift)
    norm = torch.bmm(block.per_chunk(etheta).unsqueeze(1), beta.transpose(1, 2)).squeeze(1)
    norm.clamp_min_(torch.finfo(norm.dtype).tiny)
    # log Phi undoes both shifts: + word_shift[w] + doc_shift[d] per token (padding has count 0)
    per_doc = block.per_doc((block.count * (norm.log() + word_shift[block.word])).double().sum(-1))
    doc_tokens = block.per_doc(block.count.sum(-1, dtype=torch.float64))
    return _BlockFit(gamma, etheta, norm, per_doc + doc_tokens * doc_shift.squeeze(-1).double())


def doc_kl(gamma: Tensor, alpha: Tensor) -> Tensor:
    """``(n,)`` float64 KL(Dir(gamma_d) || Dir(alpha))."""
    prior = Dirichlet(alpha.expand_as(gamma), validate_args=False)
    return kl_divergence(Dirichlet(gamma, validate_args=False), prior).double()
