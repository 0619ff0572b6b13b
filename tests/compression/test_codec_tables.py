"""Integer probability tables: exact normalization, closeness to the float model, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import ndtr

from varinf.compression.coding.tables import PRECISION, DiscreteTable, gaussian_table, quantize_pmf
from varinf.compression.lossy.bottleneck import EntropyBottleneck
from varinf.compression.lossy.gaussian import ScaleLevels, gaussian_likelihood


def test_quantize_pmf_sums_exactly_and_keeps_every_symbol():
    rng = np.random.default_rng(0)
    for n in (2, 3, 17, 1000):
        p = rng.dirichlet(np.full(n, 0.3))
        p[rng.integers(n)] = 0.0  # zero-probability symbols still get weight 1
        w = quantize_pmf(p)
        assert w.sum() == 2**PRECISION and w.min() >= 1
        # relative error of large masses is tiny (~ n / 2**24)
        big = p > 1e-3
        np.testing.assert_allclose(w[big] / 2**PRECISION, p[big] / p.sum(), rtol=1e-3)


def test_quantize_pmf_rejects_bad_input():
    for bad in (np.array([1.0]), np.array([0.5, np.nan]), np.array([-0.1, 1.1]), np.zeros(3)):
        with pytest.raises(ValueError):
            quantize_pmf(bad)


def test_table_validation_names_the_problem():
    with pytest.raises(ValueError, match="sum to"):
        DiscreteTable((np.array([1, 2], dtype=np.int64),), np.array([0]))


def test_gaussian_table_matches_discretized_gaussian():
    scales = np.array([0.11, 0.5, 3.0, 40.0])
    table = gaussian_table(scales, tail_mass=1e-7)
    for k, s in enumerate(scales):
        v = np.arange(table.lengths[k]) + table.offsets[k]
        exact = ndtr((v + 0.5) / s) - ndtr((v - 0.5) / s)
        got = table.pmfs[k][:-1] / 2**PRECISION
        assert np.all(np.abs(got - exact) <= 2.0**-PRECISION * 2 + 1e-3 * exact)
        assert -table.offsets[k] == table.lengths[k] // 2  # symmetric support


def test_scale_levels_pick_nearest_level_in_log_space():
    levels = ScaleLevels()
    s = levels.scales
    mid = np.sqrt(s[:-1] * s[1:])
    fp = lambda x: np.round(np.asarray(x) * 2**levels.frac_bits).astype(np.int64)
    assert np.array_equal(levels.index(fp(s)), np.arange(levels.count))
    assert np.array_equal(levels.index(fp(mid * 0.999)), np.arange(levels.count - 1))
    assert np.array_equal(levels.index(fp(mid * 1.001)), np.arange(1, levels.count))
    assert levels.index(fp([0.0, 1e-3]))[0] == 0 and levels.index(fp([1e6]))[0] == levels.count - 1


def test_bottleneck_table_agrees_with_its_likelihood():
    torch.manual_seed(0)
    eb = EntropyBottleneck(3)
    with torch.no_grad():
        eb.biases[-1].add_(torch.tensor([-2.0, 0.0, 3.0])[:, None, None])  # off-centre densities
    table = eb.table(tail_mass=1e-7)
    for c in range(3):
        v = torch.arange(table.lengths[c], dtype=torch.float32) + float(table.offsets[c])
        lik = eb.likelihood(v.reshape(1, 1, 1, -1).expand(1, 3, 1, -1).contiguous())[0, c, 0].detach().double().numpy()
        got = table.pmfs[c][:-1] / 2**PRECISION
        big = lik > 1e-4
        np.testing.assert_allclose(got[big], lik[big], rtol=2e-3)
        assert table.pmfs[c][-1] / 2**PRECISION < 1e-6  # escape mass ~ tail mass


def test_bottleneck_table_is_deterministic_and_digest_detects_changes():
    torch.manual_seed(1)
    eb = EntropyBottleneck(4)
    d1, d2 = eb.table().digest(), eb.table().digest()
    assert d1 == d2
    with torch.no_grad():
        eb.biases[0][0, 0, 0] += 1e-3
    assert eb.table().digest() != d1


def test_gaussian_likelihood_integrates_to_one():
    y = torch.arange(-200, 201, dtype=torch.float64)
    for s in (0.11, 1.0, 20.0):
        assert abs(float(gaussian_likelihood(y, torch.tensor(s, dtype=torch.float64)).sum()) - 1.0) < 1e-6
