"""The PSIS mean-shift warning fires on a q whose means are off by more than 0.1 posterior sd (and not on an
exact q); FitResult draws are fresh by default; wall_time excludes the diagnostics, timed apart."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.distributions import MultivariateNormal

import varinf
from varinf.diagnostics import DiagnosticWarning, diagnose_q
from varinf.diagnostics.diagnosis import shift_suspect
from varinf.models import LinearRegression, NormalNormal


@pytest.fixture(scope="module")
def regression():
    m = LinearRegression.correlated(n=60, d=3, rho=0.5, seed=4).double()
    return m, m.exact_posterior()


def _shifted(post: MultivariateNormal, coord: int, sds: float) -> MultivariateNormal:
    sd = post.covariance_matrix.diagonal().sqrt()
    loc = post.loc.clone()
    loc[coord] += sds * sd[coord]
    return MultivariateNormal(loc, covariance_matrix=post.covariance_matrix)


@pytest.mark.parametrize("sds", [0.12, 0.2])
def test_mean_shift_warning_fires_on_a_biased_q(regression, sds):
    m, post = regression
    with pytest.warns(DiagnosticWarning, match="PSIS moves q's mean of beta"):
        d = diagnose_q(m, _shifted(post, 1, sds), num_draws=4000, seed=0, evidence="is")
    assert d.verdict in ("good", "ok")  # k-hat alone would not flag it
    assert d.psis_shift_at == "beta[1]"
    assert abs(d.psis_shift - sds) < 3 * d.shift_noise + 0.02  # the shift measures the error in posterior sds


def test_no_shift_warning_for_an_exact_q(regression):
    m, post = regression
    for seed in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("error", DiagnosticWarning)
            d = diagnose_q(m, post, num_draws=4000, seed=seed, evidence="is")
        assert d.psis_shift < 1e-6


def test_shift_rule():
    assert shift_suspect(0.06, 0.01) and not shift_suspect(0.04, 0.01)
    assert not shift_suspect(0.04, 0.05)  # within its noise of zero
    assert not shift_suspect(0.03, 0.02)  # small, and even its upper bound 0.07 stays below 0.1
    assert shift_suspect(0.045, 0.03)  # real, and its upper bound 0.105 could hide a 0.1 sd error


def test_draws_are_fresh_by_default_and_reproducible_with_a_seed():
    res = varinf.fit(NormalNormal(torch.tensor([1.0, 2.0])), max_steps=200, tol_rel_obj=None, lr=0.1, progress=False)
    a, b = res.draws(50), res.draws(50)
    assert not torch.equal(a["mu"], b["mu"])
    assert torch.equal(res.draws(50, seed=3)["mu"], res.draws(50, seed=3)["mu"])
    # the diagnostics used the fit's seed; a user's default draws are not those draws
    assert not torch.equal(res.draws_unconstrained(4000), res.diagnostics.unconstrained)
    assert res.elbo(100) != res.elbo(100)
    r1, r2 = res.diagnostics.resample(20), res.diagnostics.resample(20)
    assert not torch.equal(r1["mu"], r2["mu"])


def test_wall_time_excludes_the_diagnostics_and_reports_them_apart():
    m = NormalNormal(torch.tensor([1.0, 2.0]))
    res = varinf.fit(m, max_steps=100, tol_rel_obj=None, lr=0.1, progress=False)
    assert res.diagnostics_time > 0 and res.wall_time > 0
    assert "s diagnostics)" in str(res.summary(n=100))
    plain = varinf.fit(m, max_steps=100, tol_rel_obj=None, lr=0.1, progress=False, diagnose=False)
    assert plain.diagnostics_time == 0.0
