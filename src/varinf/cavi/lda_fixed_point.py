r"""Per-document fixed-point solvers of the LDA local step, run on one block's unconverged documents.

The local step is the fixed point of :math:`F(\gamma_d) = \alpha + e^{\mathbb E\log\theta_d}\odot
\sum_w (n_{dw}/\Phi_{dw})\,e^{\mathbb E\log\beta_{\cdot w}}` (see :mod:`varinf.cavi.lda_estep`). Each
application is a coordinate-ascent step (optimal :math:`\phi`, then optimal :math:`\gamma`), so the
document's bound :math:`\ell_d` never decreases along :math:`\gamma, F(\gamma), F^2(\gamma), \ldots`
A document stops at the first application of :math:`F` that moves it by less than ``tol`` (mean absolute
change, scikit-learn's ``mean_change_tol``) and keeps that result; ``max_iter`` caps the applications.

* :func:`fixed_point`: plain iteration (Blei, Ng & Jordan 2003; Hoffman et al. 2010; scikit-learn).
* :func:`squarem`: SQUAREM (Varadhan & Roland 2008, Scand. J. Stat. 35:335, scheme S3). From
  :math:`x_1 = F(x_0)`, :math:`x_2 = F(x_1)`, :math:`r = x_1 - x_0`, :math:`v = x_2 - 2x_1 + x_0` and
  :math:`s = \max(1, \|r\|/\|v\|)` it jumps to :math:`x' = x_0 + 2sr + s^2 v` (:math:`s = 1` gives
  :math:`x_2`) and applies :math:`F` once more. :math:`F` converges linearly, slowly where topics overlap;
  the jump follows the geometric trend, so the same ``tol`` takes fewer applications (measured 1.5-2x fewer
  on Reuters and News, 5-20x on slow synthetic documents). Safeguard: a document whose :math:`x'` has a
  lower bound than :math:`x_0` (or is not finite) continues from :math:`x_2`, so no cycle lowers a
  document's bound. Jumps are projected onto :math:`\gamma \ge \alpha` (where every :math:`F(\cdot)` lies).
  The per-document bound is not concave in :math:`\gamma` (a topic can be switched off or on): a jump may
  cross into another basin, so SQUAREM can end at a different fixed point than plain iteration from the
  same start (measured: 1 document of 120, 0.39 nats lower, in the test case).

Both solvers keep per-document state as ``(n, K)`` tensors and sync with the host once per cycle.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["WorkingSet", "fixed_point", "squarem"]


class WorkingSet:
    """The documents of a block still iterating: their chunks' topic columns and counts.

    Args:
        beta: ``(m, L, K)`` shifted topic columns :math:`e^{\\mathbb E\\log\\beta - c_w}` of each chunk's words.
        count: ``(m, L)`` counts (0 on padding).
        chunk_doc: ``(m,)`` document of each chunk (non-decreasing), or ``None`` when chunk ``i`` is document ``i``.
        alpha: ``(K,)`` prior.
    """

    def __init__(self, beta: Tensor, count: Tensor, chunk_doc: Tensor | None, alpha: Tensor):
        self.beta, self.count, self.chunk_doc, self.alpha = beta, count.unsqueeze(1), chunk_doc, alpha
        self.n_docs = beta.shape[0] if chunk_doc is None else int(chunk_doc[-1]) + 1
        self.tokens = self._per_doc(count.sum(-1))
        self.rows: Tensor | None = None  # block-local row of each working document (None: all, in order)
        self.tiny = torch.finfo(beta.dtype).tiny

    def _per_doc(self, values: Tensor) -> Tensor:
        if self.chunk_doc is None:
            return values
        return values.new_zeros(self.n_docs, *values.shape[1:]).index_add_(0, self.chunk_doc, values)

    def step(self, gamma: Tensor, bound: bool = False) -> tuple[Tensor, Tensor | None]:
        """:math:`F(\\gamma)` ``(n, K)`` and, if asked, :math:`\\ell_d(\\gamma)` ``(n,)`` up to a constant per
        document (the word shifts and the prior's normalizer, the same for every :math:`\\gamma`)."""
        total = gamma.sum(-1, keepdim=True)
        elog_theta = torch.digamma(gamma).sub_(torch.digamma(total))
        shift = elog_theta.amax(-1, keepdim=True)
        etheta = (elog_theta - shift).exp_()
        e_chunk = etheta if self.chunk_doc is None else etheta.index_select(0, self.chunk_doc)
        # (m, 1, K) @ (m, K, L) via the transposed view: ~5x faster with MKL than (m, L, K) @ (m, K, 1)
        norm = torch.bmm(e_chunk.unsqueeze(1), self.beta.transpose(1, 2)).clamp_min_(self.tiny)  # Phi (m, 1, L)
        sums = torch.bmm(self.count / norm, self.beta).squeeze(1)  # clamped: padding gives 0, not NaN
        new = torch.addcmul(self.alpha, etheta, self._per_doc(sums))
        if not bound:
            return new, None
        # sum_w n log Phi + N shift - KL(Dir(gamma) || Dir(alpha)), KL without its alpha-only terms
        log_lik = self._per_doc(torch.linalg.vecdot(self.count.squeeze(1), norm.squeeze(1).log()))
        kl = torch.lgamma(total).squeeze(-1) - torch.lgamma(gamma).sum(-1)
        kl += torch.linalg.vecdot(gamma - self.alpha, elog_theta)
        return new, log_lik + self.tokens * shift.squeeze(-1) - kl

    def keep(self, keep: Tensor) -> None:
        """Restrict to the working documents ``keep`` (``(n',)`` int64, increasing)."""
        self.rows = keep if self.rows is None else self.rows[keep]
        self.tokens = self.tokens[keep]
        if self.chunk_doc is None:
            self.beta, self.count = self.beta.index_select(0, keep), self.count.index_select(0, keep)
            self.n_docs = keep.shape[0]
            return
        new_index = torch.full((self.n_docs,), -1, dtype=torch.int64, device=keep.device)
        new_index[keep] = torch.arange(keep.shape[0], device=keep.device)
        chunks = (new_index[self.chunk_doc] >= 0).nonzero().squeeze(-1)
        self.beta, self.count = self.beta.index_select(0, chunks), self.count.index_select(0, chunks)
        self.chunk_doc = new_index[self.chunk_doc[chunks]]
        self.n_docs = keep.shape[0]


class _Tracker:
    """Per-document convergence of one block: converged documents are frozen in the working state, copied
    to ``out`` (block-local rows) and dropped from the working set once they are half of it."""

    def __init__(self, work: WorkingSet, gamma: Tensor, tol: float):
        self.work, self.out, self.tol = work, gamma.clone(), tol * gamma.shape[-1]  # tol on the sum of |change|
        self.done = torch.zeros(gamma.shape[0], dtype=torch.bool, device=gamma.device)
        self.evals = 0

    def small(self, change: Tensor) -> Tensor:
        """Whether a step's change ``(n, K)`` is below the tolerance."""
        return torch.linalg.vector_norm(change, ord=1, dim=-1) < self.tol

    def update(self, state: Tensor, value: Tensor, converged: Tensor) -> tuple[Tensor, bool]:
        """New working state (``value``; frozen rows for documents already done); returns it and whether
        every document has converged. Shrinks the working set when half of it is done."""
        state = torch.where(self.done[:, None], state, value)
        self.done |= converged
        n_left = int((~self.done).sum())
        if n_left == 0 or n_left <= 0.5 * self.done.shape[0]:
            finished = self.done.nonzero().squeeze(-1)
            self.out[finished if self.work.rows is None else self.work.rows[finished]] = state[finished]
            if n_left == 0:
                return state, True
            keep = (~self.done).nonzero().squeeze(-1)
            self.work.keep(keep)
            self.done, state = self.done[keep], state[keep]
        return state, False

    def result(self, state: Tensor) -> Tensor:
        """``out`` completed with the working state of the documents still iterating (cap reached)."""
        self.out[slice(None) if self.work.rows is None else self.work.rows] = state
        return self.out


def fixed_point(work: WorkingSet, gamma: Tensor, tol: float, max_iter: int) -> tuple[Tensor, int]:
    """Plain iteration of :math:`F`; returns the block's gamma ``(n, K)`` and the applications of F."""
    track = _Tracker(work, gamma, tol)
    x = gamma
    while track.evals < max_iter:
        new, _ = work.step(x)
        track.evals += 1
        x, finished = track.update(x, new, track.small(new - x))
        if finished:
            return track.out, track.evals
    return track.result(x), track.evals


def squarem(work: WorkingSet, gamma: Tensor, tol: float, max_iter: int) -> tuple[Tensor, int]:
    """SQUAREM-accelerated iteration of :math:`F` (module docstring); same returns as :func:`fixed_point`."""
    track = _Tracker(work, gamma, tol)
    x0 = gamma
    while track.evals < max_iter:
        if max_iter - track.evals < 3:  # no room for a full cycle: plain steps
            new, _ = work.step(x0)
            track.evals += 1
            x0, finished = track.update(x0, new, track.small(new - x0))
            if finished:
                return track.out, track.evals
            continue
        x1, bound0 = work.step(x0, bound=True)
        x2, _ = work.step(x1)
        r, d2 = x1 - x0, x2 - x1
        v = d2 - r
        norm = torch.linalg.vector_norm
        s = (norm(r, dim=-1) / norm(v, dim=-1).clamp_min_(work.tiny)).clamp_min_(1.0).unsqueeze(-1)
        # projected onto gamma >= alpha, where every F(.) and the fixed point lie: components heading for
        # alpha overshoot below 0 otherwise (most jumps of slow documents, measured)
        jump = torch.maximum(torch.addcmul(x0, 2 * s, r).addcmul_(s * s, v), work.alpha)
        x3, bound_jump = work.step(jump, bound=True)
        track.evals += 3
        accept = bound_jump >= bound0  # else continue from x2, as plain iteration would
        conv1, conv2 = track.small(r), track.small(d2)
        conv3 = track.small(x3 - jump) & accept
        nxt = torch.where(accept.unsqueeze(-1), x3, x2)
        value = torch.where(conv1.unsqueeze(-1), x1, torch.where(conv2.unsqueeze(-1), x2, nxt))
        x0, finished = track.update(x0, value, conv1 | conv2 | conv3)
        if finished:
            return track.out, track.evals
    return track.result(x0), track.evals
