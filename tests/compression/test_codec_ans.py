"""Entropy coding layer: exact round trips (property-based), exact use of the integer tables, escapes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from varinf.compression.coding.ans import AnsStack, CodingError
from varinf.compression.coding.tables import PRECISION, DiscreteTable, quantize_pmf


@st.composite
def coding_problems(draw):
    """A random table (1-5 rows) and 1-3 batches of values (some far outside the rows' ranges)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    rows = draw(st.integers(1, 5))
    pmfs = [rng.dirichlet(np.full(int(rng.integers(2, 40)), 0.5)) for _ in range(rows)]
    table = DiscreteTable.from_float(pmfs, rng.integers(-20, 20, rows))
    batches = []
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.integers(0, 300))
        idx = rng.integers(0, rows, n)
        vals = table.offsets[idx] + rng.integers(-3, 45, n)
        if n and draw(st.booleans()):
            vals[rng.integers(n)] = draw(st.integers(-(2**31) + 100, 2**31 - 100))
        batches.append((vals, idx))
    return table, batches


@settings(max_examples=150, deadline=None)
@given(coding_problems())
def test_push_pop_round_trip_is_exact(problem):
    table, batches = problem
    stack = AnsStack()
    for vals, idx in batches:
        stack.push(vals, idx, table)
    words = stack.words()
    decoder = AnsStack(words) if words.size else AnsStack()
    for vals, idx in reversed(batches):  # last in, first out
        np.testing.assert_array_equal(decoder.pop(idx, table), vals)
    assert decoder.is_empty()
    ideal = sum(table.bits(v, i) for v, i in batches)
    assert ideal - 64 <= stack.num_bits() <= ideal + 64  # ANS costs the ideal length within two words


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 60), st.integers(2, 300))
def test_per_value_pmfs_interleave_with_tables(seed, n, k):
    """Stack discipline across both APIs: table-coded and per-value-pmf-coded pushes pop back in reverse."""
    rng = np.random.default_rng(seed)
    weights = quantize_pmf(rng.dirichlet(np.full(k, 0.3), size=max(n, 1)))[:n]
    values = np.array([rng.choice(k, p=w / 2**PRECISION) for w in weights], dtype=np.int64)
    table = DiscreteTable.from_float([rng.dirichlet(np.ones(5))], np.array([-2]))
    other = rng.integers(-10, 10, 7)
    stack = AnsStack()
    stack.push(other, np.zeros(7, dtype=np.int64), table)
    stack.push_pmfs(values, weights)
    stack.push_uniform(np.array([seed % 1000]), 1000)
    decoder = AnsStack(stack.words())
    assert decoder.pop_uniform(1, 1000)[0] == seed % 1000
    np.testing.assert_array_equal(decoder.pop_pmfs(weights), values)
    np.testing.assert_array_equal(decoder.pop(np.zeros(7, dtype=np.int64), table), other)
    assert decoder.is_empty()


def test_batched_quantization_equals_row_by_row():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.full(50, 0.1), size=20)
    batch = quantize_pmf(p)
    assert all(np.array_equal(batch[i], quantize_pmf(p[i])) for i in range(20))
    assert np.all(batch.sum(axis=1) == 2**PRECISION)
    with pytest.raises(ValueError, match="weights"):
        AnsStack().push_pmfs(np.array([0]), batch[:1] + 1)


def test_coder_uses_our_integer_weights_exactly():
    # weight 1 of 2**24 costs exactly 24 bits per symbol; a re-quantization of the floats would cost ~23
    table = DiscreteTable((np.array([2, 1, 2**PRECISION - 3], dtype=np.int64),), np.array([0]))
    stack = AnsStack()
    stack.push(np.ones(1000, dtype=np.int64), np.zeros(1000, dtype=np.int64), table)
    assert abs(stack.num_bits() - 24_000) <= 64
    per_value = AnsStack()
    per_value.push_pmfs(np.ones(1000, dtype=np.int64), np.repeat(table.pmfs[0][None], 1000, axis=0))
    assert per_value.num_bits() == stack.num_bits()


def test_uniform_round_trip():
    stack = AnsStack()
    stack.push_uniform(np.array([3, 0, 7]), 8)
    out = AnsStack(stack.words()).pop_uniform(3, 8)
    assert out.tolist() == [3, 0, 7]


def test_bad_words_are_rejected_clearly():
    with pytest.raises(CodingError, match="zero word"):
        AnsStack(np.array([5, 0], dtype=np.uint32))
    with pytest.raises(CodingError):
        AnsStack(np.zeros((2, 2), dtype=np.uint32))


def test_mismatched_shapes_and_indexes_raise():
    table = DiscreteTable.from_float([np.array([0.5, 0.5, 1e-6])], np.array([0]))
    with pytest.raises(ValueError, match="differ"):
        AnsStack().push(np.zeros(3), np.zeros(2), table)
    with pytest.raises(ValueError, match="indexes"):
        AnsStack().push(np.zeros(2), np.array([0, 1]), table)
