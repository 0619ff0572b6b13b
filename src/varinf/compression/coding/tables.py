"""Integer probability tables: the deterministic link between a float model and the entropy coder.

A :class:`DiscreteTable` holds ``K`` probability mass functions over contiguous integer ranges, each quantized
to ``precision = 24`` bits: row ``k`` covers the values ``offsets[k] + 0 .. offsets[k] + n_k - 1`` with integer
weights ``pmfs[k][:n_k]`` and one extra *escape* weight ``pmfs[k][n_k]`` for every value outside the range
(the value itself is then sent with a universal code, see :mod:`varinf.compression.coding.ans`). Every weight is
at least 1 and each row sums to exactly :math:`2^{24}`, so every integer is codable and the cost of value
:math:`v` in row :math:`k` is

.. math::

    \\ell(v) = 24 - \\log_2 w_k(v) \\ \\text{bits (plus the universal code for escapes)}.

Tables are built once, from float64 probabilities computed in a fixed order (:meth:`DiscreteTable.from_float`,
:func:`gaussian_table`), so the encoder and the decoder index *the same integers*; :meth:`DiscreteTable.digest`
lets a file record which tables it was written with.

Example::

    >>> import numpy as np
    >>> from varinf.compression.coding.tables import DiscreteTable
    >>> t = DiscreteTable.from_float([np.array([0.25, 0.5, 0.25, 1e-9])], np.array([-1]))
    >>> int(t.pmfs[0].sum()) == 2**24, t.lengths.tolist()
    (True, [3])
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

__all__ = ["PRECISION", "DiscreteTable", "escape_bits", "gaussian_table", "interval_pmfs", "quantize_pmf"]

PRECISION = 24  # bits of the fixed-point probabilities; constriction's default ANS models use 24


def quantize_pmf(p: np.ndarray, precision: int = PRECISION) -> np.ndarray:
    """Integer weights ``w >= 1`` with ``sum(w) == 2**precision``, close to ``p / sum(p)`` (float64, >= 0).

    Deterministic: ``floor`` of a float64 product, then the leftover units go to the largest fractional
    parts (stable order, ties broken by position). ``p`` of shape ``(K,)`` or ``(n, K)`` (one pmf per row).
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 1:
        return quantize_pmf(p[None], precision)[0]
    if p.ndim != 2:
        raise ValueError(f"expected a pmf (K,) or a batch of pmfs (n, K), got shape {p.shape}")
    k = p.shape[1]
    total = 1 << precision
    if k < 2 or k > total // 2:
        raise ValueError(f"a pmf needs 2 .. {total // 2} entries (got {k})")
    sums = p.sum(axis=1, keepdims=True)
    if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(sums <= 0):
        raise ValueError("pmf entries must be finite, non-negative and not all zero")
    free = total - k  # one unit is reserved for every entry
    scaled = p * (free / sums)
    w = np.floor(scaled).astype(np.int64)
    left = free - w.sum(axis=1, keepdims=True)  # >= 0 up to float rounding; may be slightly negative
    if np.any(left > 0):  # leftover units to the largest fractional parts
        w += np.where(left > 0, _ranks(-(scaled - w)) < left, 0)
    if np.any(left < 0):  # overshoot taken from the largest weights
        w -= np.where(left < 0, _ranks(-w) < -left, 0)
    return w + 1


def interval_pmfs(
    edges: np.ndarray, loc: np.ndarray, inv_scale: np.ndarray, shift: int, cdf: np.ndarray, lo: int
) -> np.ndarray:
    r"""Integer pmfs of ``K`` intervals under location-scale distributions, in integers only and without sorting.

    Row ``j`` is the distribution :math:`F((\cdot - \text{loc}_j)\,\text{inv\_scale}_j)` over the intervals cut by
    the ``K - 1`` increasing ``edges`` (the outer ones reach to :math:`\pm\infty`). With
    :math:`t_{jk} = \lfloor (\text{edges}_k - \text{loc}_j)\,\text{inv\_scale}_j / 2^{\text{shift}} + 1/2\rfloor`
    and the table ``cdf[i - lo]`` :math:`= \lfloor (2^{24} - K)\,F(i / 2^S)\rfloor` (nondecreasing, clamped at its
    ends), the cumulative weights are :math:`c_{j0} = 0`, :math:`c_{jk} = \text{cdf}[t_{jk}]`,
    :math:`c_{jK} = 2^{24} - K`, and the weights :math:`w_{jk} = c_{j,k+1} - c_{jk} + 1 \ge 1` sum to exactly
    :math:`2^{24}` (the "+1" reserves one unit per interval, as :func:`quantize_pmf` does).

    Computed exactly in float64 (every intermediate is an integer, or a multiple of ``2**-shift``, below ``2**53``:
    checked), in blocks of rows that stay in cache; numpy's SIMD kernels cannot change a result.

    Args:
        edges: ``(K - 1,)`` int64, fixed point.
        loc, inv_scale: ``(n,)`` int64 fixed point, ``inv_scale >= 0``; ``|edges| * inv_scale`` and
            ``|loc| * inv_scale`` must stay below ``2**52``.
        shift: fractional bits of ``(edges - loc) * inv_scale`` minus the table's input bits ``S``.
        cdf: float64 table of the cumulative weights (integers); ``lo``: the table index of its first entry.

    Returns:
        ``(n, K)`` float64 *excess* weights :math:`w - 1` (what :meth:`AnsStack.push_excess` takes).
    """
    n, k1 = len(loc), len(edges)
    total = float((1 << PRECISION) - k1 - 1)
    out = np.empty((n, k1 + 1))
    if n == 0:
        return out
    r_max = int(inv_scale.max())
    if max(int(np.abs(edges).max()), int(np.abs(loc).max())) * r_max >= 1 << 52 or int(inv_scale.min()) < 0:
        raise ValueError("interval_pmfs: fixed-point inputs out of range for exact evaluation")
    # t_jk - lo = floor(e_k r_j 2^-s - q_j) with q_j = m_j r_j 2^-s - 1/2 + lo: products exact, sums exact
    e = edges.astype(np.float64)
    r = inv_scale.astype(np.float64) * 2.0**-shift
    q = loc.astype(np.float64) * inv_scale.astype(np.float64) * 2.0**-shift - (0.5 - lo)
    block = min(n, max(1, _BLOCK_ELEMENTS // k1))
    t, ti, c = np.empty((block, k1)), np.empty((block, k1), np.intp), np.empty((block, k1))
    for s in range(0, n, block):
        m = min(n, s + block) - s
        tt, ii, cc, o = t[:m], ti[:m], c[:m], out[s : s + m]
        np.multiply.outer(r[s : s + m], e, out=tt)
        np.subtract(tt, q[s : s + m, None], out=tt)
        np.copyto(ii, tt, casting="unsafe")  # truncation = floor on [0, len(cdf)); take(mode="clip") clamps the rest
        cdf.take(ii, mode="clip", out=cc)
        o[:, 0] = cc[:, 0]
        np.subtract(cc[:, 1:], cc[:, :-1], out=o[:, 1:-1])
        np.subtract(total, cc[:, -1], out=o[:, -1])
    return out


_BLOCK_ELEMENTS = 1 << 16  # rows per block: float64 scratch arrays of about 0.5 MB each, in L2


def _ranks(keys: np.ndarray) -> np.ndarray:
    """Position of every entry in its row's stable ascending sort (the inverse permutation of argsort)."""
    order = np.argsort(keys, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(keys.shape[1])[None, :].repeat(len(keys), axis=0), axis=1)
    return ranks


@dataclass(frozen=True, eq=False)
class DiscreteTable:
    """``K`` integer pmfs with escape (see module docstring).

    Attributes:
        pmfs: ``K`` int64 arrays; ``pmfs[k]`` has ``n_k + 1`` entries, the last being the escape weight.
        offsets: ``(K,)`` int64, the value coded by entry 0 of each row.
        precision: bits of the fixed point (rows sum to ``2**precision``).
    """

    pmfs: tuple[np.ndarray, ...]
    offsets: np.ndarray
    precision: int = PRECISION

    @classmethod
    def from_float(cls, pmfs: list[np.ndarray], offsets: np.ndarray, precision: int = PRECISION) -> DiscreteTable:
        """Quantize float pmfs (each with its escape mass appended as the last entry)."""
        rows = tuple(quantize_pmf(np.asarray(p, dtype=np.float64), precision) for p in pmfs)
        return cls(rows, np.asarray(offsets, dtype=np.int64).copy(), precision)

    def __post_init__(self):
        if len(self.pmfs) != len(self.offsets):
            raise ValueError(f"{len(self.pmfs)} pmfs but {len(self.offsets)} offsets")
        for k, row in enumerate(self.pmfs):
            if row.dtype != np.int64 or row.ndim != 1 or row.size < 2:
                raise ValueError(f"row {k}: expected a 1-d int64 array with >= 2 entries")
            if int(row.sum()) != 1 << self.precision or int(row.min()) < 1:
                raise ValueError(f"row {k}: weights must be >= 1 and sum to 2**{self.precision}")

    def __len__(self) -> int:
        return len(self.pmfs)

    @property
    def lengths(self) -> np.ndarray:
        """``(K,)`` number of directly coded values per row (excluding the escape entry)."""
        return np.array([row.size - 1 for row in self.pmfs], dtype=np.int64)

    def digest(self) -> int:
        """CRC32 of every integer in the table: files record it to detect tables derived differently."""
        crc = zlib.crc32(np.asarray([self.precision, len(self)], dtype="<i8").tobytes())
        crc = zlib.crc32(self.offsets.astype("<i8").tobytes(), crc)
        for row in self.pmfs:
            crc = zlib.crc32(row.astype("<i8").tobytes(), crc)
        return crc

    def bits(self, values: np.ndarray, indexes: np.ndarray) -> float:
        """Ideal code length in bits of ``values`` coded with rows ``indexes`` (escapes included)."""
        values = np.asarray(values, dtype=np.int64).ravel()
        indexes = np.asarray(indexes, dtype=np.int64).ravel()
        total = 0.0
        for k in np.unique(indexes):
            v = values[indexes == k] - self.offsets[k]
            row = self.pmfs[k]
            n = row.size - 1
            escaped = (v < 0) | (v >= n)
            sym = np.where(escaped, n, v)
            total += float(np.sum(self.precision - np.log2(row[sym].astype(np.float64))))
            if escaped.any():
                total += float(np.sum(escape_bits(values[indexes == k][escaped], int(self.offsets[k]), n)))
        return total


def escape_bits(values: np.ndarray, offset: int, n: int) -> np.ndarray:
    """Bits of the universal code for values outside ``[offset, offset + n)``: sign + 5-bit length + mantissa."""
    values = np.asarray(values, dtype=np.int64)
    m = np.where(values >= offset + n, values - (offset + n), offset - 1 - values)
    nbits = np.floor(np.log2(m + 1.0)).astype(np.int64)
    return 1 + 5 + nbits


def gaussian_table(scales: np.ndarray, tail_mass: float = 1e-7, precision: int = PRECISION) -> DiscreteTable:
    """Rows for zero-mean Gaussians discretized to the integers, one per scale in ``scales`` (float64).

    Row ``k`` covers :math:`|v| \\le \\lceil s_k\\, \\Phi^{-1}(1 - \\text{tail}/2)\\rceil` with mass
    :math:`\\Phi((v + 1/2)/s_k) - \\Phi((v - 1/2)/s_k)`, computed as a difference of upper tails on the
    positive side so that small masses keep their relative accuracy.
    """
    multiplier = -float(ndtri(tail_mass / 2))
    pmfs, offsets = [], []
    for s in np.asarray(scales, dtype=np.float64):
        c = int(np.ceil(s * multiplier))
        v = np.abs(np.arange(-c, c + 1, dtype=np.float64))
        mass = ndtr((0.5 - v) / s) - ndtr((-0.5 - v) / s)  # symmetric form: both terms small in the tail
        tail = 2.0 * ndtr(-(c + 0.5) / s)
        pmfs.append(np.append(mass, tail))
        offsets.append(-c)
    return DiscreteTable.from_float(pmfs, np.asarray(offsets, dtype=np.int64), precision)
