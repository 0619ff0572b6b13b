"""Conjugate-exponential core: CAVI updates match the textbook posteriors; features give exact statistics."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Wishart

from varinf.cavi import ConjugateDirichlet, ConjugateNormalWishart, GaussianData

F64 = {"dtype": torch.float64}


def _problem(n=50, d=3, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, **F64) * 2 + 1
    r = torch.softmax(torch.randn(n, k, generator=g, **F64), -1)
    a = torch.randn(d, d, generator=g, **F64)
    prior = ConjugateNormalWishart.from_moments(
        torch.randn(k, d, generator=g, **F64),
        torch.tensor([0.5, 2.0], **F64),
        torch.tensor([4.0, 6.0], **F64),
        (a @ a.T + torch.eye(d, **F64)).expand(k, d, d),
    )
    return x, r, prior


def test_normal_wishart_update_matches_bishop():
    """Prior + weighted statistics equals Bishop (2006) eqs. 10.60-10.63 in moment form."""
    x, r, prior = _problem()
    data = GaussianData(x)
    nk, s1, s2 = data.weighted_stats(r)
    post = prior.update(nk, s1, s2, nk)
    b0, m0, nu0, w0inv = prior.mean_precision, prior.mean, prior.df, prior.inv_scale
    xbar = s1 / nk[:, None]
    sk = torch.einsum("nk,nkd,nke->kde", r, x[:, None] - xbar, x[:, None] - xbar) / nk[:, None, None]
    beta = b0 + nk
    diff = xbar - m0
    winv = w0inv + nk[:, None, None] * sk + (b0 * nk / (b0 + nk))[:, None, None] * diff[:, :, None] * diff[:, None]
    assert torch.allclose(post.mean_precision, beta)
    assert torch.allclose(post.mean, (b0[:, None] * m0 + nk[:, None] * xbar) / beta[:, None])
    assert torch.allclose(post.df, nu0 + nk)
    assert torch.allclose(post.inv_scale, winv, atol=1e-10)


def test_expected_stats_monte_carlo_and_log_likelihood():
    _, _, prior = _problem()
    s = prior.expected_stats()
    dist = prior.distribution()
    torch.manual_seed(1)
    draws = dist.sample((20_000,))
    mu, lam = draws[..., 0, :], draws[..., 1:, :]
    assert torch.allclose(lam.mean(0), s.precision, rtol=0.05, atol=0.05)
    assert torch.allclose(torch.einsum("skde,ske->skd", lam, mu).mean(0), s.precision_mean, rtol=0.05, atol=0.1)
    x = torch.randn(5, 3, **F64)
    diff = x[:, None, None] - mu  # (5, S, K, D)
    maha = torch.einsum("nskd,skde,nske->nsk", diff, lam, diff)
    logdet = torch.linalg.slogdet(lam).logabsdet
    mc = (0.5 * logdet - 1.5 * torch.log(torch.tensor(2 * torch.pi, **F64)) - 0.5 * maha).transpose(0, 1)
    exact = s.expected_log_likelihood(x)
    assert exact.shape == (5, 2)
    assert torch.allclose(mc.mean(0), exact, atol=0.15)
    # GaussianData's single-GEMM route agrees exactly with the einsum route
    data = GaussianData(x)
    bias = 0.5 * s.logdet - 0.5 * 3 * torch.log(torch.tensor(2 * torch.pi, **F64)) - 0.5 * s.quad
    assert torch.allclose(data.quadratic(s.precision, s.precision_mean, bias), exact, atol=1e-10)


def test_gaussian_data_chunked_equals_cached():
    x, r, prior = _problem(n=101)
    s = prior.expected_stats()
    full, chunked = GaussianData(x), GaussianData(x, max_elements=40)  # chunks of 3 rows
    assert full._cached is not None and chunked._cached is None
    for a, b in zip(full.weighted_stats(r), chunked.weighted_stats(r)):
        assert torch.allclose(a, b, atol=1e-10)
    qa = full.quadratic(s.precision, s.precision_mean, s.quad)
    assert torch.allclose(qa, chunked.quadratic(s.precision, s.precision_mean, s.quad), atol=1e-10)


def test_blend_translate_and_roundtrip():
    x, r, prior = _problem()
    data = GaussianData(x)
    nk, s1, s2 = data.weighted_stats(r)
    target = prior.update(nk, s1, s2, nk)
    assert all(torch.equal(a, b) for a, b in zip(prior.blend(target, 1.0).natural, target.natural))
    half = prior.blend(target, 0.5)
    assert torch.allclose(half.mean_precision, 0.5 * (prior.mean_precision + target.mean_precision))
    # translating the data translates the posterior means and leaves the rest alone
    shift = torch.tensor([1.0, -2.0, 3.0], **F64)
    moved = prior.translate(shift).update(*GaussianData(x + shift).weighted_stats(r), nk)
    assert torch.allclose(moved.mean, target.mean + shift)
    assert torch.allclose(moved.inv_scale, target.inv_scale, atol=1e-9)
    back = ConjugateNormalWishart.from_moments(target.mean, target.mean_precision, target.df, target.inv_scale)
    assert all(torch.allclose(a, b) for a, b in zip(back.natural, target.natural))


def test_dirichlet_core_and_kl():
    prior = ConjugateDirichlet(torch.full((2, 4), 0.5, **F64))
    post = prior.update(torch.tensor([[3.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 7.0]], **F64))
    assert torch.allclose(post.mean().sum(-1), torch.ones(2, **F64))
    draws = post.distribution().sample((50_000,))
    assert torch.allclose(draws.log().mean(0), post.expected_stats(), atol=0.05)
    kl = post.kl(prior)
    assert kl.shape == (2,) and bool((kl > 0).all())
    assert torch.allclose(prior.kl(prior), torch.zeros(2, **F64))


def test_wishart_distribution_matches_expected_precision():
    _, _, prior = _problem()
    w = Wishart(prior.df, covariance_matrix=prior.scale())
    assert torch.allclose(w.mean, prior.expected_stats().precision)


def test_singular_scale_is_reported():
    bad = ConjugateNormalWishart.from_moments(
        torch.zeros(1, 2, **F64), torch.ones(1, **F64), torch.full((1,), 3.0, **F64), -torch.eye(2, **F64)[None]
    )
    with pytest.raises(RuntimeError, match="positive definiteness"):
        bad.expected_stats()
