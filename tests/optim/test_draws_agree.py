"""Draws agree with the summary (issue 20, item 2): when the summary reports PSIS-corrected estimates,
``res.draws()``, the ArviZ export and ``varinf fit -o`` give PSIS-resampled draws; q's own on request, with a
warning when they may be off by 0.1 sd or more; the summary says which."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.distributions import MultivariateNormal

import varinf
from varinf.diagnostics import DiagnosticWarning, diagnose_q
from varinf.models import LinearRegression
from varinf.optim import MethodRun, build_result
from varinf.optim.methods.bam import full_rank_module


@pytest.fixture(scope="module")
def shifted_fit():
    """A fit whose q is the exact posterior moved by 0.4 sd along one coordinate: PSIS corrects it (k-hat good),
    q's own draws are off."""
    m = LinearRegression.correlated(n=60, d=3, rho=0.5, seed=4).double()
    post = m.exact_posterior()
    loc = post.loc.clone()
    loc[1] += 0.4 * post.covariance_matrix[1, 1].sqrt()
    fam = full_rank_module(loc, post.covariance_matrix).double()
    run = MethodRun(model=m, family=fam, objective=None, elbo_trace=torch.zeros(0, dtype=torch.float64),
                    converged=True, convergence_reason="by hand", num_steps=0, grad_evals=0, wall_time=0.0,
                    method="pathfinder", family_name="fullrank", report="psis")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticWarning)
        d = diagnose_q(m, fam(), num_draws=8000, seed=0, corrected=True, evidence="is")
    return build_result(run, d), post


def test_default_draws_are_psis_resampled_and_agree_with_the_summary(shifted_fit):
    res, post = shifted_fit
    assert res.psis_corrected
    sd = post.covariance_matrix.diagonal().sqrt()
    summary = res.summary(seed=0)
    assert "PSIS-corrected" in summary.header[-1] and "res.draws() are PSIS-resampled" in summary.header[-1]
    draws = res.draws(8000, seed=1)["beta"].double()
    table = torch.tensor([summary.to_dict()[f"beta[{i}]"]["mean"] for i in range(3)], dtype=torch.float64)
    assert ((draws.mean(0) - table).abs() / sd).max() < 0.06  # the draws give the summary's means
    assert ((draws.mean(0) - post.loc).abs() / sd).max() < 0.1  # ... which are the posterior's
    rows = res.diagnostics.draws["beta"]
    assert all(bool((rows == x).all(-1).any()) for x in draws[:50])  # resampled from the diagnostics' draws


def test_q_own_draws_on_request_warn_when_they_may_be_off(shifted_fit):
    res, post = shifted_fit
    sd = post.covariance_matrix.diagonal().sqrt()
    with pytest.warns(DiagnosticWarning, match="q's own draws: PSIS moves q's mean of beta\\[1\\]"):
        own = res.draws(8000, seed=1, corrected=False)["beta"].double()
    assert ((own.mean(0) - post.loc).abs() / sd)[1] > 0.3  # q's draws are off, as warned
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticWarning)
        own = res.draws_unconstrained(5, seed=2, corrected=False)
    with varinf.utils.seeded(2):
        assert torch.equal(own, res.family().sample((5,)))  # q's own draws, from the seed's stream


def test_arviz_export_follows_the_summary(shifted_fit):
    pytest.importorskip("arviz")
    from varinf.diagnostics import to_inference_data

    res, post = shifted_fit
    idata = to_inference_data(res, seed=0)
    assert idata.posterior.attrs["draws"] == "PSIS-resampled draws of q"
    beta = torch.as_tensor(idata.posterior["beta"].values).reshape(-1, 3)
    sd = post.covariance_matrix.diagonal().sqrt()
    assert ((beta.mean(0) - post.loc).abs() / sd).max() < 0.1
    own = to_inference_data(res, seed=0, corrected=False)
    assert own.posterior.attrs["draws"] == "draws of q" and "psis_log_weight" in own.sample_stats


def test_no_trustworthy_correction_means_q_draws_and_an_error_on_request():
    m = LinearRegression.correlated(n=60, d=3, rho=0.9, seed=1).double()
    post = m.exact_posterior()
    narrow = MultivariateNormal(post.loc, covariance_matrix=0.05 * post.covariance_matrix)  # far too narrow
    fam = full_rank_module(narrow.loc, narrow.covariance_matrix).double()
    run = MethodRun(model=m, family=fam, objective=None, elbo_trace=torch.zeros(0, dtype=torch.float64),
                    converged=True, convergence_reason="by hand", num_steps=0, grad_evals=0, wall_time=0.0,
                    method="auto", family_name="fullrank", report="psis")  # fmt: skip
    with pytest.warns(DiagnosticWarning, match="unreliable"):  # the warning that q's draws are off
        d = diagnose_q(m, fam(), num_draws=4000, seed=0, corrected=True, evidence="is")
    res = build_result(run, d)
    assert d.verdict in ("bad", "very bad") and not res.psis_corrected
    assert "no trustworthy PSIS correction" in res.summary(seed=0).header[-1]
    assert res.draws(10, seed=0)["beta"].shape == (10, 3)  # q's own
    with pytest.raises(ValueError, match="no trustworthy PSIS correction"):
        res.draws(10, corrected=True)


def test_a_default_fit_reports_which_draws_it_returns():
    res = varinf.fit(varinf.load_example("linear_regression"), progress=False)
    assert res.psis_corrected and "PSIS-resampled" in str(res.summary(seed=0))
    res = varinf.fit(varinf.load_example("linear_regression"), method="advi", max_steps=300, tol_rel_obj=None,
                     lr=0.05, progress=False)  # fmt: skip
    assert not res.psis_corrected and "res.draws() are q's draws" in str(res.summary(seed=0))
