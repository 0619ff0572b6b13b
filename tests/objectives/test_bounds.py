"""Bounds: IWAE(K=1) = ELBO, monotonicity in K toward log p(x), Rényi limits, rate/distortion."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from varinf.models import NormalNormal
from varinf.objectives import ELBO, IWAE, Renyi

pytestmark = pytest.mark.usefixtures("float64")


def _conjugate():
    """A conjugate model, its exact log evidence, and a deliberately imperfect q (batch of R copies)."""
    m = NormalNormal(torch.tensor([0.8, 1.9, 1.2, 0.4]), sigma=1.0, prior_scale=2.0).double()
    post = m.exact_posterior()
    return m, m.exact_log_evidence(), post


def _q(loc, scale, batch=()):
    loc = torch.as_tensor(loc).reshape(1).expand(*batch, 1)
    return Independent(Normal(loc, torch.as_tensor(scale).reshape(1).expand(*batch, 1)), 1)


def test_iwae_k1_equals_elbo_monte_carlo():
    m, _, post = _conjugate()
    q = _q(post.mean + 0.3, post.stddev * 1.5)
    torch.manual_seed(5)
    a = IWAE(num_particles=1).loss(q, m.log_density)
    torch.manual_seed(5)
    b = ELBO(num_particles=1, analytic=False).loss(q, m.log_density)
    torch.testing.assert_close(a.bound, b.bound)
    torch.testing.assert_close(a.loss, b.loss)


def test_exact_posterior_gives_exact_evidence():
    m, log_z, post = _conjugate()
    est = ELBO(num_particles=16, analytic=False).loss(_q(post.mean, post.stddev), m.log_density)
    # log p(x,z) - log q(z) is constant = log p(x) when q is the posterior: zero variance
    torch.testing.assert_close(est.log_weights, torch.full_like(est.log_weights, log_z))


def test_iwae_increases_with_k_towards_log_evidence():
    m, log_z, post = _conjugate()
    R = 4000  # independent repetitions as a batch
    q = _q(post.mean + 0.5, post.stddev * 2.0, (R,))
    bounds = {}
    for k in (1, 5, 50, 500):
        b = IWAE(num_particles=k).loss(q, lambda z: m.log_density(z)).bound
        bounds[k] = (b.mean().item(), b.std().item() / math.sqrt(R))
    values = [bounds[k][0] for k in (1, 5, 50, 500)]
    for (lo, hi), (k1, k2) in zip(itertools.pairwise(values), [(1, 5), (5, 50), (50, 500)]):
        se = math.hypot(bounds[k1][1], bounds[k2][1])
        assert hi > lo + 3 * se, (k1, k2, lo, hi, se)
    assert values[-1] < log_z + 3 * bounds[500][1]
    assert log_z - values[-1] < 0.1 * (log_z - values[0])  # most of the gap is closed


def test_elbo_analytic_and_monte_carlo_entropy_agree():
    m, log_z, post = _conjugate()
    q = _q(post.mean - 0.4, post.stddev * 0.7)
    a = ELBO(num_particles=200_000).loss(q, m.log_density).bound
    b = ELBO(num_particles=200_000, analytic=False).loss(q, m.log_density).bound
    assert abs(a - b) < 0.01
    assert a < log_z


def test_renyi_limits():
    m, _, post = _conjugate()
    q = _q(post.mean + 0.2, post.stddev * 1.3)
    torch.manual_seed(3)
    r0 = Renyi(alpha=0.0, num_particles=7).loss(q, m.log_density).bound
    torch.manual_seed(3)
    iw = IWAE(num_particles=7).loss(q, m.log_density).bound
    torch.testing.assert_close(r0, iw)
    torch.manual_seed(3)
    r1 = Renyi(alpha=1.0, num_particles=7).loss(q, m.log_density).bound
    torch.manual_seed(3)
    el = ELBO(num_particles=7, analytic=False).loss(q, m.log_density).bound
    torch.testing.assert_close(r1, el)


def test_renyi_orders_between_elbo_and_iwae():
    m, _, post = _conjugate()
    q = _q(post.mean + 0.5, post.stddev * 2.0, (20_000,))
    vals = [Renyi(alpha=a, num_particles=10).loss(q, m.log_density).bound.mean().item() for a in (0.0, 0.5, 0.999)]
    assert vals[0] > vals[1] > vals[2]


def test_rate_distortion_with_prior():
    # VAE-style call: log_p is the likelihood, the prior is a Distribution; ELBO = -(rate + distortion)
    y = torch.tensor([0.5, -0.3])
    prior = Independent(Normal(torch.zeros(1), torch.ones(1)), 1)
    q = _q(0.1, 0.6)

    def loglik(z):
        return Normal(z, 1.0).log_prob(y).sum(-1)

    est = ELBO(num_particles=100_000).loss(q, loglik, prior=prior)
    torch.testing.assert_close(est.rate, kl_divergence(q, prior))
    mc = ELBO(num_particles=100_000, analytic=False).loss(q, loglik, prior=prior)
    assert abs(mc.rate - est.rate) < 0.01
    torch.testing.assert_close(est.bound, -(est.rate + est.distortion))
    beta = ELBO(num_particles=10, beta=4.0).loss(q, loglik, prior=prior)
    torch.testing.assert_close(beta.loss, beta.distortion + 4.0 * beta.rate)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_particles"):
        ELBO(num_particles=0)
    with pytest.raises(ValueError, match="gradient"):
        ELBO(gradient="dreg")
    with pytest.raises(ValueError, match="num_particles >= 2"):
        IWAE(num_particles=1, gradient="score")
