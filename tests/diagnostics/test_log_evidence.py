"""Importance-sampled log evidence: matches the exact value with q as proposal; the prior as proposal fails."""

from __future__ import annotations

import math

import torch
from torch.distributions import Independent, MultivariateNormal, Normal

from varinf.diagnostics import diagnose_q, importance_log_evidence, log_evidence
from varinf.models import LinearRegression, NormalNormal


def test_is_log_evidence_matches_exact_within_reported_se(linreg_fullrank):
    ev = linreg_fullrank.diagnostics.log_evidence
    exact = linreg_fullrank.model.exact_log_evidence()
    assert 0 < ev.se < 0.05
    assert abs(ev.estimate - exact) < 3 * ev.se
    # the ELBO is a lower bound and the gap is KL(q || posterior) >= 0, small for a good full-rank fit (both
    # estimated from 4000 draws: up to their Monte Carlo error)
    d = linreg_fullrank.diagnostics
    assert d.elbo < exact + 3 * d.elbo_se
    assert -3 * (d.elbo_se + ev.se) <= d.kl < 0.1


def test_reported_se_matches_spread_of_repeated_estimates():
    """Over independent repetitions the estimates scatter by about the reported standard error."""
    model = LinearRegression.synthetic(n=50, d=2, seed=1).double()
    post = model.exact_posterior()
    q = MultivariateNormal(post.loc, scale_tril=1.3 * post.scale_tril)  # wider than p: finite-variance weights
    evs = [importance_log_evidence(model, q, num_draws=500, seed=s) for s in range(40)]
    est = torch.tensor([e.estimate for e in evs], dtype=torch.float64)
    mean_se = sum(e.se for e in evs) / len(evs)
    assert 0.7 < est.std().item() / mean_se < 1.4
    inside = sum(abs(e.estimate - model.exact_log_evidence()) < 2 * e.se for e in evs)
    assert inside >= 32  # about 95% expected


def test_exact_posterior_proposal_gives_exact_evidence():
    model = NormalNormal(torch.tensor([0.5, 1.5, 1.0]), sigma=1.0, prior_scale=2.0).double()
    post = model.exact_posterior()
    q = Independent(Normal(post.loc.reshape(1), post.scale.reshape(1)), 1)
    ev = importance_log_evidence(model, q, num_draws=200)
    assert abs(ev.estimate - model.exact_log_evidence()) < 1e-8 and ev.se < 1e-6


def test_naive_prior_sampling_fails_where_q_succeeds():
    """The README example: five coefficients, 100 observations; the prior is 10x wider than the posterior
    in each direction, so almost no prior draw lands where the likelihood is (the same S for both)."""
    model = LinearRegression.synthetic(n=100, d=5, seed=0).double()
    exact = model.exact_log_evidence()
    prior = Independent(Normal(torch.zeros(5, dtype=torch.float64), torch.ones(5, dtype=torch.float64)), 1)
    post = model.exact_posterior()
    q = MultivariateNormal(post.loc, scale_tril=1.1 * post.scale_tril)  # a good (not exact) fitted q
    S = 4000
    naive = diagnose_q(model, prior, num_draws=S, warn=False, label="prior")
    good = diagnose_q(model, q, num_draws=S, warn=False)
    # q: accurate, and its error is within the reported se
    assert abs(good.log_evidence.estimate - exact) < 3 * good.log_evidence.se < 0.1
    # prior: a handful of draws carry all the weight; the estimate is far too low and the reported se
    # does not cover the error (the weights' variance is effectively infinite: k-hat > 0.7 says so)
    assert naive.log_evidence.ess < 20
    assert exact - naive.log_evidence.estimate > 3 * naive.log_evidence.se
    assert naive.khat > 0.7 and good.khat < 0.5


def test_log_evidence_edge_cases():
    lw = torch.tensor([0.0, -math.inf, 0.0, -math.inf], dtype=torch.float64)
    ev = log_evidence(lw)
    assert abs(ev.estimate - math.log(0.5)) < 1e-12 and ev.ess == 2
    assert log_evidence(torch.full((4,), -math.inf)).se == math.inf
