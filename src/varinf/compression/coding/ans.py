"""ANS stack coder: the one adapter around ``constriction`` (the only module that imports it).

:class:`AnsStack` is a last-in-first-out stream of 32-bit words (constriction's ``stack.AnsCoder``, 24-bit
probabilities). Values pushed with an integer :class:`~varinf.compression.coding.tables.DiscreteTable` pop back
exactly when popped with the same rows; pushes and pops nest like a stack, which is what bits-back coding
(BB-ANS, Townsend et al. 2019, arXiv:1901.04866) needs: *pop* a latent with the posterior, *push* the data
and the latent with the likelihood and prior.

Exactness: a table row with integer weights :math:`w_i \\ge 1`, :math:`\\sum_i w_i = 2^{24}`, is handed to
``constriction.stream.model.Categorical(w - 1, perfect=False)``. Constriction's fast quantizer assigns
weight :math:`\\lfloor c_i \\cdot s\\rfloor + i` to the cumulative :math:`c_i` with
:math:`s = (2^{24} - n) / \\sum (w - 1) = 1`, i.e. exactly :math:`\\sum_{j<i} w_j`: the coder uses *our*
integers, not a re-quantization of floats. Values outside a row's range are sent as an escape symbol
followed by a universal code (sign bit, 5-bit length, mantissa) on uniform models.

Costs: the file size is ``len(words) * 32`` bits; :meth:`AnsStack.num_bits` counts them.

Example::

    >>> import numpy as np
    >>> from varinf.compression.coding.ans import AnsStack
    >>> from varinf.compression.coding.tables import DiscreteTable
    >>> table = DiscreteTable.from_float([np.array([0.2, 0.5, 0.3, 1e-6])], np.array([-1]))
    >>> stack = AnsStack()
    >>> stack.push(np.array([0, 1, -1, 7]), np.zeros(4, dtype=np.int64), table)
    >>> restored = AnsStack(stack.words()).pop(np.zeros(4, dtype=np.int64), table)
    >>> restored.tolist()
    [0, 1, -1, 7]
"""

from __future__ import annotations

import constriction
import numpy as np

from .tables import PRECISION, DiscreteTable

__all__ = ["MAX_ESCAPE", "AnsStack", "CodingError"]

MAX_ESCAPE = 2**31 - 1  # |value - range edge| limit of the escape code
_MODELS = constriction.stream.model
_CATEGORICAL = _MODELS.Categorical(perfect=False)  # probabilities given per symbol (see push_excess)


class CodingError(ValueError):
    """The compressed words do not decode under the given tables (corrupt or foreign data)."""


def _decode(coder, *args) -> np.ndarray:
    """``coder.decode`` with constriction's Rust panics (BaseException subclasses) turned into CodingError."""
    try:
        return np.asarray(coder.decode(*args), dtype=np.int64)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:
        raise CodingError(f"cannot decode the compressed data: {e}") from None


class _RowModels:
    """constriction models for every row of one table, built once per table (cheap: one pass per row)."""

    def __init__(self, table: DiscreteTable):
        # w - 1 with perfect=False reproduces the integer weights exactly (see module docstring)
        self.models = [_MODELS.Categorical((row - 1).astype(np.float64), perfect=False) for row in table.pmfs]


_ROW_MODELS: dict[int, tuple[DiscreteTable, _RowModels]] = {}


def _row_models(table: DiscreteTable) -> _RowModels:
    entry = _ROW_MODELS.get(id(table))
    if entry is None or entry[0] is not table:
        if len(_ROW_MODELS) > 16:  # tables are few; keep the cache from growing with short-lived ones
            _ROW_MODELS.clear()
        entry = (table, _RowModels(table))
        _ROW_MODELS[id(table)] = entry
    return entry[1]


class AnsStack:
    """A stack of compressed words; ``push`` encodes, ``pop`` decodes (in reverse order of pushes)."""

    def __init__(self, words: np.ndarray | None = None):
        if words is None:
            self._coder = constriction.stream.stack.AnsCoder()
            return
        words = np.ascontiguousarray(words, dtype=np.uint32)
        if words.ndim != 1:
            raise CodingError("compressed words must be a 1-d array")
        if words.size and words[-1] == 0:
            raise CodingError("compressed data ends in a zero word (not produced by this coder)")
        try:
            self._coder = constriction.stream.stack.AnsCoder(words)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # constriction reports bad input as a Rust panic (a BaseException)
            raise CodingError(f"invalid compressed data: {e}") from None

    # --------------------------------------------------------------------------- bookkeeping
    def words(self) -> np.ndarray:
        """The compressed data as uint32 words (a copy)."""
        return np.asarray(self._coder.get_compressed(), dtype=np.uint32).copy()

    def num_bits(self) -> int:
        """Size of the compressed data in bits (a multiple of 32)."""
        return int(self._coder.num_bits())

    def is_empty(self) -> bool:
        """Whether every pushed bit has been popped (a decoder's final consistency check)."""
        return bool(self._coder.is_empty())

    # --------------------------------------------------------------------------- uniform integers
    def push_uniform(self, values: np.ndarray, size: int) -> None:
        """Push integers in ``[0, size)`` with a uniform model (``2 <= size <= 2**24``)."""
        values = np.ascontiguousarray(values, dtype=np.int32).ravel()
        if values.size:
            self._coder.encode_reverse(values, _MODELS.Uniform(int(size)))

    def pop_uniform(self, count: int, size: int) -> np.ndarray:
        """Pop ``count`` integers pushed with :meth:`push_uniform`."""
        if count == 0:
            return np.zeros(0, dtype=np.int64)
        return _decode(self._coder, _MODELS.Uniform(int(size)), int(count))

    # --------------------------------------------------------------------------- table-coded integers
    def push(self, values: np.ndarray, indexes: np.ndarray, table: DiscreteTable) -> None:
        """Push integer ``values`` coding ``values[i]`` with row ``indexes[i]`` of ``table`` (same shapes)."""
        values = np.asarray(values, dtype=np.int64).ravel()
        indexes = np.asarray(indexes, dtype=np.int64).ravel()
        if values.shape != indexes.shape:
            raise ValueError(f"values {values.shape} and indexes {indexes.shape} differ in size")
        if indexes.size and (indexes.min() < 0 or indexes.max() >= len(table)):
            raise ValueError(f"indexes must lie in [0, {len(table)})")
        models = _row_models(table).models
        # rows are visited in descending order here and ascending in pop (stack discipline)
        for k in np.unique(indexes)[::-1]:
            v = values[indexes == k] - table.offsets[k]
            n = table.pmfs[k].size - 1
            escaped = (v < 0) | (v >= n)
            if escaped.any():
                self._push_escapes(values[indexes == k][escaped], int(table.offsets[k]), n)
            self._coder.encode_reverse(np.where(escaped, n, v).astype(np.int32), models[k])

    def pop(self, indexes: np.ndarray, table: DiscreteTable) -> np.ndarray:
        """Pop values pushed by :meth:`push` with the same ``indexes``; returns int64 of ``indexes.shape``."""
        indexes = np.asarray(indexes, dtype=np.int64)
        flat = indexes.ravel()
        if flat.size and (flat.min() < 0 or flat.max() >= len(table)):
            raise ValueError(f"indexes must lie in [0, {len(table)})")
        models = _row_models(table).models
        out = np.empty(flat.shape, dtype=np.int64)
        for k in np.unique(flat):
            where = np.flatnonzero(flat == k)
            sym = _decode(self._coder, models[k], where.size)
            n = table.pmfs[k].size - 1
            vals = sym + table.offsets[k]
            escaped = sym == n
            if escaped.any():
                vals[escaped] = self._pop_escapes(int(escaped.sum()), int(table.offsets[k]), n)
            out[where] = vals
        return out.reshape(indexes.shape)

    # --------------------------------------------------------------------------- one pmf per value
    def push_pmfs(self, values: np.ndarray, weights: np.ndarray) -> None:
        """Push ``values[i]`` in ``[0, K)`` with its own integer pmf ``weights[i]`` (``(n, K)`` int64, rows
        summing to ``2**24``, entries >= 1, e.g. from :func:`~varinf.compression.coding.tables.quantize_pmf`).

        For models whose distribution changes with every datum (bits-back posteriors and likelihoods).
        """
        values, weights = self._check_pmfs(values, weights)
        self.push_excess(values, weights - 1.0)

    def pop_pmfs(self, weights: np.ndarray) -> np.ndarray:
        """Pop ``len(weights)`` values pushed by :meth:`push_pmfs` with the same weights; int64 ``(n,)``."""
        _, weights = self._check_pmfs(np.zeros(len(weights), dtype=np.int64), weights)
        return self.pop_excess(weights - 1.0)

    def push_excess(self, values: np.ndarray, excess: np.ndarray) -> None:
        """:meth:`push_pmfs` given ``excess = weights - 1`` as float64 integers (``(n, K)``, rows summing to
        ``2**24 - K``), as :func:`~varinf.compression.coding.tables.interval_pmfs` builds them: one constriction
        call, no checks beyond shapes (the caller's construction guarantees the sums)."""
        if excess.ndim != 2 or excess.shape[0] != np.size(values):
            raise ValueError(f"excess weights must have shape ({np.size(values)}, K), got {excess.shape}")
        if excess.shape[0]:
            self._coder.encode_reverse(np.asarray(values, dtype=np.int32).ravel(), _CATEGORICAL, excess)

    def pop_excess(self, excess: np.ndarray) -> np.ndarray:
        """Pop ``len(excess)`` values pushed by :meth:`push_excess` with the same ``excess``; int64 ``(n,)``."""
        if excess.ndim != 2:
            raise ValueError(f"excess weights must have shape (n, K), got {excess.shape}")
        if not excess.shape[0]:
            return np.zeros(0, dtype=np.int64)
        return _decode(self._coder, _CATEGORICAL, excess)

    @staticmethod
    def _check_pmfs(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = np.asarray(values, dtype=np.int64).ravel()
        weights = np.asarray(weights)
        if weights.ndim != 2 or weights.shape[0] != values.size or weights.shape[1] < 2:
            raise ValueError(f"weights must have shape ({values.size}, K >= 2), got {weights.shape}")
        if weights.dtype.kind not in "iu" or (
            weights.size and (weights.min() < 1 or np.any(weights.sum(axis=1) != 2**PRECISION))
        ):
            raise ValueError(f"weights must be integers >= 1 with rows summing to 2**{PRECISION}")
        if values.size and (values.min() < 0 or values.max() >= weights.shape[1]):
            raise ValueError(f"values must lie in [0, {weights.shape[1]})")
        return values, weights.astype(np.float64)

    # --------------------------------------------------------------------------- escape code
    def _push_escapes(self, values: np.ndarray, offset: int, n: int) -> None:
        above = values >= offset + n
        m = np.where(above, values - (offset + n), offset - 1 - values)
        if m.max() > MAX_ESCAPE - 1:
            raise ValueError(f"value too far outside the table range (limit {MAX_ESCAPE})")
        for mi, up in zip(m[::-1].tolist(), above[::-1].tolist()):  # reversed: pop returns them in order
            r = mi + 1
            nbits = r.bit_length() - 1
            rest = r - (1 << nbits)
            if nbits > 16:
                self.push_uniform(np.array([rest & 0xFFFF]), 1 << 16)
                self.push_uniform(np.array([rest >> 16]), 1 << (nbits - 16))
            elif nbits > 0:
                self.push_uniform(np.array([rest]), 1 << nbits)
            self.push_uniform(np.array([nbits]), 32)
            self.push_uniform(np.array([int(up)]), 2)

    def _pop_escapes(self, count: int, offset: int, n: int) -> np.ndarray:
        out = np.empty(count, dtype=np.int64)
        for i in range(count):
            up = int(self.pop_uniform(1, 2)[0])
            nbits = int(self.pop_uniform(1, 32)[0])
            if nbits > 16:
                high = int(self.pop_uniform(1, 1 << (nbits - 16))[0])
                rest = (high << 16) | int(self.pop_uniform(1, 1 << 16)[0])
            elif nbits > 0:
                rest = int(self.pop_uniform(1, 1 << nbits)[0])
            else:
                rest = 0
            m = (1 << nbits) + rest - 1
            out[i] = offset + n + m if up else offset - 1 - m
        return out
