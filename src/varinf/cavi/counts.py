"""``DocTermCounts``: a document-term count matrix as flat nonzero triplets, the LDA E-step's input.

Storing only the nonzeros ``(doc, word, count)`` (sorted by document, with CSR row pointers) lets one
E-step iteration touch every document at once with gathers and ``index_add`` — no per-document loop.

Accepted inputs: a dense ``(n_docs, n_words)`` numpy array / torch tensor / nested list, a
``scipy.sparse`` matrix, or a torch sparse (COO/CSR) tensor. Counts must be finite and non-negative
(fractional counts such as tf weights are allowed, as in scikit-learn).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from .validation import resolve_dtype

__all__ = ["DocTermCounts"]

_csr_warning_silenced = False


@dataclass(frozen=True)
class DocTermCounts:
    """Nonzero entries of a document-term matrix.

    Attributes:
        doc: ``(nnz,)`` int64 document index, non-decreasing.
        word: ``(nnz,)`` int64 vocabulary index.
        count: ``(nnz,)`` float counts (> 0).
        indptr: ``(n_docs + 1,)`` int64; document ``d`` owns entries ``indptr[d]:indptr[d+1]``.
        n_docs, n_words: matrix shape.
    """

    doc: Tensor
    word: Tensor
    count: Tensor
    indptr: Tensor
    n_docs: int
    n_words: int

    @property
    def total(self) -> float:
        """Total number of tokens (sum of counts)."""
        return float(self.count.sum(dtype=torch.float64))

    @property
    def nnz(self) -> int:
        return self.count.shape[0]

    @classmethod
    def from_triplets(cls, doc: Tensor, word: Tensor, count: Tensor, n_docs: int, n_words: int) -> DocTermCounts:
        keep = count != 0
        doc, word, count = doc[keep], word[keep], count[keep]
        order = torch.argsort(doc * n_words + word)
        doc, word, count = doc[order], word[order], count[order]
        indptr = torch.zeros(n_docs + 1, dtype=torch.int64, device=doc.device)
        indptr[1:] = torch.cumsum(torch.bincount(doc, minlength=n_docs), 0)
        return cls(doc, word, count, indptr, n_docs, n_words)

    @classmethod
    def from_matrix(
        cls, x, *, name: str = "X", dtype: torch.dtype | None = None, device=None, n_words: int | None = None
    ) -> DocTermCounts:
        """Validate and convert a count matrix; ``ValueError`` names what is wrong (shape, NaN/inf, negatives)."""
        if isinstance(x, DocTermCounts):
            counts = x
        else:
            dtype = resolve_dtype(dtype, x)
            doc, word, count, shape = _triplets(x, name)
            if len(shape) != 2:
                raise ValueError(f"{name} must be 2-D (n_docs, n_words), got shape {tuple(shape)}")
            if shape[0] == 0 or shape[1] == 0:
                raise ValueError(f"{name} is empty (shape {tuple(shape)})")
            count = count.to(dtype)
            bad = ~torch.isfinite(count)
            if bool(bad.any()):
                i = int(bad.nonzero()[0, 0])
                raise ValueError(
                    f"{name} contains {int(bad.sum())} NaN/infinite counts (first at doc {int(doc[i])}, word {int(word[i])})"
                )
            neg = count < 0
            if bool(neg.any()):
                i = int(neg.nonzero()[0, 0])
                raise ValueError(
                    f"{name} contains {int(neg.sum())} negative counts (first at doc {int(doc[i])}, word {int(word[i])})"
                )
            device = device if device is not None else doc.device
            counts = cls.from_triplets(doc.to(device), word.to(device), count.to(device), int(shape[0]), int(shape[1]))
        if n_words is not None and counts.n_words != n_words:
            raise ValueError(f"{name} has {counts.n_words} words (columns) but the model was fitted with {n_words}")
        return counts

    def to(self, device=None, dtype: torch.dtype | None = None) -> DocTermCounts:
        return DocTermCounts(
            self.doc.to(device),
            self.word.to(device),
            self.count.to(device=device, dtype=dtype),
            self.indptr.to(device),
            self.n_docs,
            self.n_words,
        )

    def rows(self, start: int, stop: int) -> DocTermCounts:
        """Documents ``start:stop`` (a contiguous slice: views, no gather)."""
        a, b = int(self.indptr[start]), int(self.indptr[stop])
        return DocTermCounts(
            self.doc[a:b] - start,
            self.word[a:b],
            self.count[a:b],
            self.indptr[start : stop + 1] - a,
            stop - start,
            self.n_words,
        )

    def blocks(self, max_entries: int) -> list[tuple[int, int]]:
        """``(start, stop)`` document ranges holding about ``max_entries`` nonzeros each (at least one document)."""
        bounds, start = [], 0
        while start < self.n_docs:
            limit = int(self.indptr[start]) + max_entries
            stop = int(torch.searchsorted(self.indptr, limit, right=True)) - 1
            stop = min(max(stop, start + 1), self.n_docs)
            bounds.append((start, stop))
            start = stop
        return bounds

    def select(self, docs: Tensor) -> DocTermCounts:
        """The sub-matrix of rows ``docs`` (``(B,)`` int64), renumbered ``0..B-1`` in the given order."""
        return self.select_with_positions(docs)[0]

    def select_with_positions(self, docs: Tensor) -> tuple[DocTermCounts, Tensor]:
        """:meth:`select`, plus the positions ``(nnz',)`` of the kept entries in this object's arrays
        (to carry per-entry data such as gathered topic columns along)."""
        docs = docs.to(self.indptr.device)
        starts = self.indptr[docs]
        lens = self.indptr[docs + 1] - starts
        new_doc = torch.repeat_interleave(torch.arange(docs.shape[0], device=docs.device), lens)
        offsets = torch.arange(new_doc.shape[0], device=docs.device) - torch.repeat_interleave(
            torch.cumsum(lens, 0) - lens, lens
        )
        pos = starts[new_doc] + offsets
        indptr = torch.zeros(docs.shape[0] + 1, dtype=torch.int64, device=docs.device)
        indptr[1:] = torch.cumsum(lens, 0)
        sub = DocTermCounts(new_doc, self.word[pos], self.count[pos], indptr, int(docs.shape[0]), self.n_words)
        return sub, pos

    # ---- sparse kernels (torch CSR: MKL/cuSPARSE back ends, far faster than gather + index_add)
    def _csr(self, indptr: Tensor, indices: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
        global _csr_warning_silenced
        if _csr_warning_silenced:
            return torch.sparse_csr_tensor(indptr, indices, values, shape, check_invariants=False)
        with warnings.catch_warnings():  # torch warns once per process "CSR support is in beta": noise here
            warnings.simplefilter("ignore", UserWarning)
            out = torch.sparse_csr_tensor(indptr, indices, values, shape, check_invariants=False)
        _csr_warning_silenced = True
        return out

    def matmul(self, values: Tensor, right: Tensor) -> Tensor:
        """:math:`M R`: ``M`` = this pattern holding ``values`` (``(nnz,)``), ``R`` ``(n_words, K)`` -> ``(n_docs, K)``."""
        return self._csr(self.indptr, self.word, values, (self.n_docs, self.n_words)) @ right

    def matmul_t(self, values: Tensor, right: Tensor) -> Tensor:
        """:math:`M^\top R`, ``R`` ``(n_docs, K)`` -> ``(n_words, K)``."""
        order, indptr = self._word_major
        return self._csr(indptr, self.doc[order], values[order], (self.n_words, self.n_docs)) @ right

    @cached_property
    def _word_major(self) -> tuple[Tensor, Tensor]:
        order = torch.argsort(self.word, stable=True)
        indptr = torch.zeros(self.n_words + 1, dtype=torch.int64, device=self.word.device)
        indptr[1:] = torch.cumsum(torch.bincount(self.word, minlength=self.n_words), 0)
        return order, indptr


def _triplets(x, name: str) -> tuple[Tensor, Tensor, Tensor, tuple[int, ...]]:
    if hasattr(x, "tocoo") and hasattr(x, "nnz"):  # scipy.sparse matrix / array
        coo = x.tocsr().tocoo()  # via CSR: duplicate entries are summed
        if coo.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold numeric counts, got dtype {coo.dtype}")
        doc = torch.as_tensor(np.asarray(coo.row, dtype=np.int64))
        word = torch.as_tensor(np.asarray(coo.col, dtype=np.int64))
        return doc, word, torch.as_tensor(np.asarray(coo.data, dtype=np.float64)), tuple(coo.shape)
    if isinstance(x, Tensor) and x.layout != torch.strided:
        coo = x.to_sparse_coo().coalesce()
        if coo.sparse_dim() != 2 or coo.dense_dim() != 0:
            raise ValueError(f"{name} must be a 2-D sparse matrix, got shape {tuple(coo.shape)}")
        idx = coo.indices()
        return idx[0], idx[1], coo.values(), tuple(coo.shape)
    try:
        t = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{name} could not be read as a numeric count matrix: {e}") from None
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{name} must hold real counts, got dtype {t.dtype}")
    if t.ndim != 2:
        return t.new_zeros(0, dtype=torch.int64), t.new_zeros(0, dtype=torch.int64), t.reshape(-1), tuple(t.shape)
    # NaN != 0 is True, so non-finite entries survive to the finiteness check
    doc, word = (t != 0).nonzero(as_tuple=True)
    return doc, word, t[doc, word], tuple(t.shape)
