r"""Exactly rounded fixed-point tables of scalar functions: the only place a transcendental function meets a pmf.

An integer network or an integer pmf needs :math:`\tanh`, :math:`\sigma`, :math:`\Phi`, ... as *integers* that every
machine agrees on. libm (and numpy's SIMD kernels) may differ in the last bit from CPU to CPU, so a table entry is
*specified* as the exact real value, rounded by a stated rule,

.. math::

    T[i] = \Big\lfloor \text{scale}\cdot f\big(i / 2^{\text{in\_bits}}\big) + \text{offset} \Big\rfloor,
    \qquad \text{offset} = 1/2 \text{ (round half up) or } 0 \text{ (floor)},

and *computed* in float64 (fast; any libm whose error is far below the margin gives the same integers), with every
entry whose float value lies within ``MARGIN`` (plus ``2**-40`` of its size) of an integer recomputed exactly in
:mod:`decimal` at 50 digits (software arithmetic, identical everywhere). Inverse functions
(:func:`exact_ndtri_table`) are rounded the same way and their ambiguous entries settled by evaluating
:math:`\Phi` exactly at the rounding boundary.

Functions (:data:`FUNCTIONS`): ``tanh``, ``sigmoid``, ``ncdf`` (:math:`\Phi`), ``elu`` (:math:`e^x-1`),
``silu`` (:math:`x\sigma(x)`), ``softplus``, ``exp``; :func:`lookup_table` caches tables by their specification, and
:func:`table_digest` hashes their integers (files record it).

Example::

    >>> from varinf.compression.coding.lookup import lookup_table
    >>> t = lookup_table("tanh", in_bits=4, lo=-16, hi=16, scale=2**12)
    >>> int(t[16]), int(t[32]), int(t[0])  # tanh(0), tanh(1), tanh(-1) in units of 2**-12
    (0, 3119, -3119)
"""

from __future__ import annotations

import decimal
import math
import zlib
from functools import lru_cache

import numpy as np
from scipy.special import expit, ndtr, ndtri

__all__ = ["FUNCTIONS", "MARGIN", "exact_ndtri_table", "lookup_table", "table_digest"]

MARGIN = 1e-6  # a float64 value this close to a rounding boundary (plus 2**-40 of its size) is recomputed exactly;
# float64 evaluation errors are a few ulps: below 1e-7 for every table here
_DIGITS = 50
_PI = decimal.Decimal("3.14159265358979323846264338327950288419716939937510582097494459230781640628620899863")


def _ctx() -> decimal.Context:
    return decimal.Context(prec=_DIGITS, rounding=decimal.ROUND_HALF_EVEN)


def _d_ncdf(x: decimal.Decimal) -> decimal.Decimal:
    r""":math:`\Phi(x) = 1/2 + \varphi(x)\sum_{n\ge0} x^{2n+1}/(2n+1)!!` (all terms of one sign: no cancellation in
    the sum), evaluated with 25 guard digits for the cancellation in ``1/2 + ...`` far in the lower tail."""
    with decimal.localcontext(decimal.Context(prec=_DIGITS + 25)):
        term, total, n, x2 = x, x, 0, x * x
        while abs(term) > abs(total) * decimal.Decimal(10) ** -(_DIGITS + 25):
            n += 1
            term = term * x2 / (2 * n + 1)
            total += term
        density = (-x2 / 2).exp() / (2 * _PI).sqrt()
        return decimal.Decimal("0.5") + density * total


def _d_sigmoid(x: decimal.Decimal) -> decimal.Decimal:
    return 1 / (1 + (-x).exp())


# name -> (float64 numpy implementation, exact decimal implementation)
FUNCTIONS = {
    "tanh": (np.tanh, lambda x: 1 - 2 / ((2 * x).exp() + 1)),
    "sigmoid": (expit, _d_sigmoid),
    "ncdf": (ndtr, _d_ncdf),
    "elu": (np.expm1, lambda x: x.exp() - 1),
    "silu": (lambda x: x * expit(x), lambda x: x * _d_sigmoid(x)),
    "softplus": (lambda x: np.logaddexp(0.0, x), lambda x: (1 + x.exp()).ln()),
    "exp": (np.exp, lambda x: x.exp()),
}


def _dyadic(i: int, bits: int) -> decimal.Decimal:
    return decimal.Decimal(i) / decimal.Decimal(2**bits)  # exact: 2**-bits has a finite decimal expansion


@lru_cache(maxsize=64)
def lookup_table(
    name: str,
    in_bits: int,
    lo: int,
    hi: int,
    scale: float,
    offset: float = 0.5,
    shift: float = 0.0,
    reciprocal: bool = False,
) -> np.ndarray:
    r"""``(hi - lo + 1,)`` float64 integers :math:`\lfloor \text{scale}\cdot g(x_i) + \text{offset}\rfloor` at
    :math:`x_i = i/2^{\text{in\_bits}}`, :math:`i = \text{lo}..\text{hi}`, where :math:`g(x) = f(x) + \text{shift}`,
    or :math:`1/(f(x) + \text{shift})` when ``reciprocal``. ``scale`` and ``shift`` must be exact binary floats (a
    power of two, an integer, or e.g. ``1e-4`` as its float64 value: the exact path uses that very value).

    The result is read-only and cached (tables are specified by these arguments alone).
    """
    fast, exact = FUNCTIONS[name]
    x = np.arange(lo, hi + 1, dtype=np.float64) / 2.0**in_bits
    with np.errstate(all="ignore"):
        g = fast(x) + shift
        y = scale / g if reciprocal else scale * g
    y = y + offset
    out = np.floor(y)
    frac = y - out
    margin = MARGIN + np.abs(y) * 2.0**-40
    ambiguous = np.flatnonzero(~np.isfinite(y) | (frac < margin) | (frac > 1 - margin))
    if ambiguous.size:
        d_scale, d_shift, d_offset = (decimal.Decimal(float(v)) for v in (scale, shift, offset))
        with decimal.localcontext(_ctx()):
            for j in ambiguous.tolist():
                g_exact = exact(_dyadic(lo + j, in_bits)) + d_shift
                value = d_scale / g_exact if reciprocal else d_scale * g_exact
                out[j] = float(math.floor(value + d_offset))
    out.flags.writeable = False
    return out


@lru_cache(maxsize=16)
def exact_ndtri_table(numerators: tuple[int, ...], denominator: int, out_bits: int) -> np.ndarray:
    r"""int64 :math:`\lfloor 2^{\text{out\_bits}}\,\Phi^{-1}(k/\text{denominator}) + 1/2\rfloor` for each
    ``k`` in ``numerators`` (all strictly inside ``(0, denominator)``), exactly rounded (see module docstring)."""
    k = np.asarray(numerators, dtype=np.float64)
    y = ndtri(k / denominator) * 2.0**out_bits + 0.5
    out = np.floor(y).astype(np.int64)
    frac = y - out
    with decimal.localcontext(_ctx()):
        for j in np.flatnonzero((frac < MARGIN) | (frac > 1 - MARGIN)).tolist():
            # j0 = floor(2^F q + 1/2) for q = Phi^-1(p)  <=>  Phi((j0 - 1/2)/2^F) <= p < Phi((j0 + 1/2)/2^F)
            p = decimal.Decimal(numerators[j]) / decimal.Decimal(denominator)
            j0 = int(out[j])
            if _d_ncdf(_dyadic(2 * j0 - 1, out_bits + 1)) > p:
                j0 -= 1
            elif _d_ncdf(_dyadic(2 * j0 + 1, out_bits + 1)) <= p:
                j0 += 1
            out[j] = j0
    out.flags.writeable = False
    return out


def table_digest(*tables: np.ndarray, crc: int = 0) -> int:
    """CRC32 of the integers of ``tables`` (as little-endian int64), chained from ``crc``."""
    for t in tables:
        crc = zlib.crc32(np.asarray(t).astype("<i8").tobytes(), crc)
    return crc
