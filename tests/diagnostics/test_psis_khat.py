"""PSIS k-hat: small when q matches the posterior, large when the family cannot; thresholds; corrections."""

from __future__ import annotations

import math

import pytest
import torch

from varinf.diagnostics import KHAT_GOOD, diagnose, diagnose_q, khat_threshold, khat_verdict, psis

from .conftest import _fit, correlated_gaussian, neals_funnel


def test_khat_small_for_fullrank_on_exact_gaussian_posterior(linreg_fullrank):
    d = linreg_fullrank.diagnostics
    assert d.khat < 0.5
    assert d.verdict == "good" and d.reliable and not d.messages
    assert d.ess > 0.5 * d.num_draws  # nearly proportional weights


def test_khat_large_for_meanfield_on_correlated_target(correlated_meanfield):
    d = correlated_meanfield.diagnostics
    assert d.khat > 0.7
    assert d.verdict in ("bad", "very bad") and not d.reliable
    assert any("k-hat" in m for m in d.messages)
    # mean-field's variance along x1 is 1 - rho^2 at the optimum, far below the true 1
    assert d.draws["x"][:, 0].var().item() < 0.3


def test_khat_large_for_meanfield_on_funnel():
    """Neal's funnel: no Gaussian has the funnel's neck and mouth at once."""
    with pytest.warns(UserWarning):
        res = _fit(neals_funnel(), "meanfield", 1000)
    assert res.diagnostics.khat > 0.7


def test_threshold_and_verdicts():
    assert khat_threshold(100) == pytest.approx(0.5)
    assert khat_threshold(4000) == 0.7 and khat_threshold(10**6) == 0.7
    assert khat_threshold(1000) == pytest.approx(1 - 1 / 3)
    assert khat_verdict(0.3, 4000) == "good"
    assert khat_verdict(0.6, 4000) == "ok"
    assert khat_verdict(0.6, 100) == "bad"  # with 100 draws PSIS is trusted only below 0.5
    assert khat_verdict(1.2, 4000) == "very bad"
    assert khat_verdict(math.nan, 4000) == "unknown"
    assert KHAT_GOOD == 0.5


def test_psis_khat_tracks_tail_of_ratios():
    # ratios with a Pareto(shape k) tail: log w = k * Exp(1) has P(w > t) = t^(-1/k)
    g = torch.Generator().manual_seed(0)
    e = torch.empty(20000, dtype=torch.float64).exponential_(generator=g)
    for k in (0.3, 0.8):  # the estimator shrinks towards 0.5 a little (weakly informative prior)
        r = psis(k * e)
        assert abs(r.khat - k) < 0.1
    r = psis(torch.tensor([0.0, -math.inf] * 50, dtype=torch.float64))
    assert r.weights[1::2].sum() == 0  # -inf log weights get zero weight
    with pytest.raises(ValueError, match="NaN"):
        psis(torch.tensor([0.0, math.nan]))


def test_equal_ratios_have_no_tail_but_a_diverged_q_is_not_equal_ratios():
    exact = psis(torch.full((4000,), -33.25, dtype=torch.float64) + 1e-12 * torch.randn(4000, dtype=torch.float64))
    assert exact.khat == -math.inf and exact.verdict == "good" and exact.ess == 4000
    # a diverged fit: log weights near -1e28 spread over 1e15 nats are tiny relative to their size, not equal
    g = torch.Generator().manual_seed(0)
    lw = -1.1e28 + 3e13 * torch.randn(4000, generator=g, dtype=torch.float64).exp()
    r = psis(lw)
    assert r.khat > 0.7 and r.verdict != "good" and r.ess < 10


def test_psis_corrected_moments_improve_on_q():
    """PSIS-reweighting a slightly too narrow Gaussian q recovers the target's mean and sd."""
    from torch.distributions import Independent, Normal

    model = correlated_gaussian(rho=0.5)
    q = Independent(Normal(torch.full((2,), 0.3, dtype=torch.float64), torch.full((2,), 0.8, dtype=torch.float64)), 1)
    d = diagnose_q(model, q, num_draws=8000, warn=False)
    assert d.khat < 0.7
    raw_err = (d.draws["x"].mean(0).abs().max().item(), abs(d.draws["x"].std(0).mean().item() - 1))
    psis_err = (d.mean()["x"].abs().max().item(), abs(d.sd()["x"].mean().item() - 1))
    assert psis_err[0] < 0.5 * raw_err[0] and psis_err[1] < 0.5 * raw_err[1]
    resampled = d.resample(4000)["x"]
    assert resampled.shape == (4000, 2) and abs(resampled.mean().item()) < 0.1


def test_diagnose_is_reproducible_and_leaves_global_rng(linreg_fullrank):
    state = torch.random.get_rng_state()
    a = diagnose(linreg_fullrank, num_draws=500, warn=False)
    b = diagnose(linreg_fullrank, num_draws=500, warn=False)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert a.khat == b.khat and torch.equal(a.psis.log_weights, b.psis.log_weights)
    with pytest.raises(ValueError, match="at least 100"):
        diagnose(linreg_fullrank, num_draws=10)


def test_pareto_smoothing_matches_arviz_without_importing_it():
    """varinf's own PSIS (no ArviZ start-up on every fit) equals ArviZ's psislw: k-hat and smoothed weights."""
    np = pytest.importorskip("numpy")
    az = pytest.importorskip("arviz")
    g = torch.Generator().manual_seed(1)
    for scale, S in ((0.3, 4000), (1.5, 4000), (3.0, 1000), (0.8, 150)):
        lw = scale * torch.randn(S, generator=g, dtype=torch.float64) ** 2
        lw[:3] = -math.inf if S == 150 else lw[:3]
        r = psis(lw)
        ref, kref = az.psislw(np.asarray(lw), reff=1.0)
        assert r.khat == pytest.approx(float(kref), abs=1e-9)
        torch.testing.assert_close(r.smoothed_log_weights, torch.from_numpy(np.asarray(ref)), atol=1e-9, rtol=1e-9)


def test_psis_shift_warns_when_q_is_offset_but_khat_is_fine():
    """q wider than the target (k-hat small) but shifted: the tail check passes, the mean-shift check does not."""
    from torch.distributions import Independent, Normal

    model = correlated_gaussian(rho=0.0)  # N(0, I)
    q = Independent(Normal(torch.full((2,), 0.4, dtype=torch.float64), torch.full((2,), 1.3, dtype=torch.float64)), 1)
    with pytest.warns(UserWarning, match="PSIS moves q's mean"):
        d = diagnose_q(model, q, num_draws=4000)
    assert d.khat < 0.5 and d.psis_shift > 0.2 and d.psis_shift_at.startswith("x[")
    exact = Independent(Normal(torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)), 1)
    assert diagnose_q(model, exact, num_draws=4000, warn=False).psis_shift < 0.05
