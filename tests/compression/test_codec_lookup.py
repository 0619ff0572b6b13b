"""Exactly rounded tables, exact integer products and sort-free interval pmfs: the integers behind portable files."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from varinf.compression.coding import lookup
from varinf.compression.coding.integer_net import IntegerDense, exact_matmul, round_shift
from varinf.compression.coding.lookup import exact_ndtri_table, lookup_table
from varinf.compression.coding.tables import PRECISION, interval_pmfs


@pytest.fixture
def every_entry_exact(monkeypatch):
    """Route every table entry through the exact decimal path (as if every float value were ambiguous)."""
    monkeypatch.setattr(lookup, "MARGIN", 2.0)
    lookup.lookup_table.cache_clear()
    lookup.exact_ndtri_table.cache_clear()
    yield
    lookup.lookup_table.cache_clear()
    lookup.exact_ndtri_table.cache_clear()


SPECS = [  # (name, in_bits, lo, hi, scale, offset, shift, reciprocal): a sample of entries of each kind of table
    ("tanh", 12, -20480, -20000, 4096.0, 0.5, 0.0, False),
    ("tanh", 12, -300, 300, 4096.0, 0.5, 0.0, False),
    ("sigmoid", 10, -18432, -18000, float(2**24 - 2), 0.0, 0.0, False),
    ("sigmoid", 12, -200, 200, float(2**24 - 256), 0.0, 0.0, False),
    ("ncdf", 12, -24576, -24000, float(2**24 - 256), 0.0, 0.0, False),
    ("ncdf", 12, -300, 300, float(2**24 - 256), 0.0, 0.0, False),
    ("ncdf", 12, 24000, 24576, float(2**24 - 256), 0.0, 0.0, False),
    ("elu", 12, -45056, -44800, 4096.0, 0.5, 0.0, False),
    ("silu", 12, -100, 100, 4096.0, 0.5, 0.0, False),
    ("softplus", 10, -16384, -16000, 65536.0, 0.5, 1e-4, True),
    ("softplus", 10, -200, 200, 65536.0, 0.5, 1e-4, True),
    ("exp", 10, -7168, -7000, 65536.0, 0.5, 0.0, False),
]


def test_float_tables_equal_their_exact_definition(every_entry_exact):
    """The fast float64 path (with its ambiguity check) gives the integers of the exact real-number definition."""
    lookup.MARGIN = 1e-6
    fast = [lookup_table(*spec).copy() for spec in SPECS]
    edges = exact_ndtri_table(tuple(range(1, 64)), 64, 16).copy()
    lookup.MARGIN = 2.0
    lookup.lookup_table.cache_clear()
    lookup.exact_ndtri_table.cache_clear()
    for spec, f in zip(SPECS, fast):
        np.testing.assert_array_equal(lookup_table(*spec), f, err_msg=str(spec))
    np.testing.assert_array_equal(exact_ndtri_table(tuple(range(1, 64)), 64, 16), edges)


def test_tables_hold_the_stated_values():
    t = lookup_table("ncdf", 12, -8, 8, float(2**24 - 256), 0.0)
    assert t[8] == (2**24 - 256) // 2  # Phi(0) = 1/2 exactly: an exactly-integer entry, settled by the exact path
    np.testing.assert_array_equal(t, np.floor((2**24 - 256) * ndtr(np.arange(-8, 9) / 4096)))
    assert not t.flags.writeable
    edges = exact_ndtri_table((1, 2, 3), 4, 16)
    np.testing.assert_array_equal(edges, [-44203, 0, 44203])  # Phi^-1(1/4) * 2**16 = -44203.36


def test_interval_pmfs_match_the_integer_rule_and_sum_exactly():
    rng = np.random.default_rng(0)
    cdf = lookup_table("ncdf", 12, -6 * 4096, 6 * 4096, float(2**24 - 64), 0.0)
    edges = exact_ndtri_table(tuple(range(1, 64)), 64, 16)
    loc, inv = rng.integers(-(2**20), 2**20, 700), rng.integers(0, 2**29, 700)
    loc[:3], inv[:3] = 0, [2**16, 1, 0]  # the prior itself; an enormous scale; zero inverse scale
    got = interval_pmfs(edges, loc, inv, 20, cdf, -6 * 4096)
    t = ((edges[None, :] - loc[:, None]) * inv[:, None] + (1 << 19)) >> 20  # pure int64 reference
    c = cdf[np.clip(t + 6 * 4096, 0, len(cdf) - 1)]
    ref = np.diff(np.concatenate([np.zeros((700, 1)), c, np.full((700, 1), 2**24 - 64)], axis=1), axis=1)
    np.testing.assert_array_equal(got, ref)
    assert got.min() >= 0 and np.all(got.sum(axis=1) == 2**PRECISION - 64)
    # max-entropy bins of the prior, to the table resolution: each edge within 2**-13 of its place on Phi
    np.testing.assert_allclose((got[0] + 1) / 2**PRECISION, 1 / 64, atol=1e-4)
    with pytest.raises(ValueError, match="out of range"):
        interval_pmfs(edges, loc, np.full(700, 2**40), 20, cdf, -6 * 4096)


def test_exact_products_do_not_depend_on_the_kernel():
    rng = np.random.default_rng(1)
    x, w = rng.integers(-(2**20), 2**20, (50, 300)), rng.integers(-(2**20), 2**20, (300, 7))
    np.testing.assert_array_equal(exact_matmul(x, w), x @ w)  # float64 BLAS path (bound < 2**53)
    big = rng.integers(-(2**40), 2**40, (50, 300))
    np.testing.assert_array_equal(exact_matmul(big, w), big @ w)  # int64 fallback
    np.testing.assert_array_equal(round_shift(np.array([5.0, 6.0, -5.0, -6.0]), 2), [1, 2, -1, -1])  # half up
    np.testing.assert_array_equal(round_shift(np.array([5, 6, -5, -6]), 2), [1, 2, -1, -1])
    with pytest.raises(ValueError, match="too large"):
        IntegerDense.build(np.full((2, 10), 1e9), np.zeros(2), 12, 2**12)
