"""Analytic KLs registered by varinf.cavi: closed forms, Monte Carlo agreement, Normal-Wishart moments."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Gamma, Wishart, kl_divergence

from varinf.cavi import NormalWishart, bartlett_sample, expected_logdet, mvdigamma, unpack


@pytest.fixture(autouse=True, scope="module")
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _spd(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return a @ a.T / d + 0.5 * torch.eye(d, dtype=torch.float64)


def _mc_kl(p, q, n: int = 10_000) -> tuple[float, float]:
    x = bartlett_sample(p.df, p.scale_tril, (n,)) if isinstance(p, Wishart) else p.sample((n,))
    r = p.log_prob(x) - q.log_prob(x)
    return float(r.mean()), float(r.std() / math.sqrt(n))


def test_wishart_kl_matches_gamma_in_one_dimension():
    # W(nu, V) on 1x1 matrices is Gamma(nu / 2, rate = 1 / (2 V)): torch's Gamma KL is the reference
    for nu_p, v_p, nu_q, v_q in [(3.0, 0.7, 5.0, 2.0), (1.5, 4.0, 1.2, 0.3)]:
        p = Wishart(torch.tensor(nu_p), covariance_matrix=torch.tensor([[v_p]]))
        q = Wishart(torch.tensor(nu_q), covariance_matrix=torch.tensor([[v_q]]))
        ref = kl_divergence(Gamma(nu_p / 2, 1 / (2 * v_p)), Gamma(nu_q / 2, 1 / (2 * v_q)))
        assert float(kl_divergence(p, q)) == pytest.approx(float(ref), rel=1e-10)


def test_wishart_kl_monte_carlo_and_zero_at_equality():
    p = Wishart(torch.tensor(6.0), covariance_matrix=_spd(3, 0), validate_args=False)
    q = Wishart(torch.tensor(4.5), covariance_matrix=_spd(3, 1), validate_args=False)
    kl = float(kl_divergence(p, q))
    mc, se = _mc_kl(p, q)
    assert kl > 0 and abs(kl - mc) < 4 * se
    assert float(kl_divergence(p, p)) == pytest.approx(0.0, abs=1e-10)


def _nw(seed: int, d: int = 2, df: float = 6.0, beta: float = 2.0) -> NormalWishart:
    g = torch.Generator().manual_seed(seed)
    loc = torch.randn(d, generator=g, dtype=torch.float64)
    tril = torch.linalg.cholesky(_spd(d, seed + 10))
    return NormalWishart(loc, torch.tensor(beta), torch.tensor(df), tril)


def test_normal_wishart_kl_monte_carlo_batched():
    p, q = _nw(0), _nw(1, df=4.0, beta=0.5)
    kl = float(kl_divergence(p, q))
    mc, se = _mc_kl(p, q)
    assert kl > 0 and abs(kl - mc) < 4 * se
    assert float(kl_divergence(p, p)) == pytest.approx(0.0, abs=1e-10)
    # batch of 3 against one prior broadcasts
    batch = NormalWishart(
        torch.stack([p.loc, q.loc, p.loc]),
        torch.tensor([2.0, 0.5, 2.0]),
        torch.tensor([6.0, 4.0, 6.0]),
        torch.stack([p.scale_tril, q.scale_tril, p.scale_tril]),
    )
    out = kl_divergence(batch, q)
    assert out.shape == (3,)
    assert float(out[0]) == pytest.approx(kl, rel=1e-12) and float(out[1]) == pytest.approx(0.0, abs=1e-10)


def test_normal_wishart_moments_entropy_and_logdet():
    p = _nw(3, d=3, df=7.0)
    draws = p.sample((10_000,))
    assert draws.shape == (10_000, 4, 3)
    mu, lam = unpack(draws)
    mean_mu, mean_lam = unpack(p.mean)
    assert torch.allclose(mu.mean(0), mean_mu, atol=0.03)
    assert torch.allclose(lam.mean(0), mean_lam, rtol=0.03, atol=0.05)
    logdet = torch.linalg.slogdet(lam).logabsdet
    e_logdet = float(expected_logdet(p.df, p.scale_tril))
    assert abs(float(logdet.mean()) - e_logdet) < 4 * float(logdet.std()) / 100
    lp = p.log_prob(draws)
    assert abs(float(-lp.mean()) - float(p.entropy())) < 4 * float(lp.std()) / 100


def test_bartlett_sampler_mean_matches_torch_wishart():
    w = Wishart(torch.tensor(5.0), covariance_matrix=_spd(3, 2))
    draws = bartlett_sample(w.df, w.scale_tril, (20_000,))
    assert draws.shape == (20_000, 3, 3)
    assert torch.allclose(draws.mean(0), w.mean, rtol=0.05, atol=0.05)
    assert bool(torch.isfinite(w.log_prob(draws[:100])).all())


def test_mvdigamma_is_derivative_of_mvlgamma():
    a = torch.tensor([1.7, 3.2, 10.0], requires_grad=True)
    (grad,) = torch.autograd.grad(torch.mvlgamma(a, 3).sum(), a)
    assert torch.allclose(mvdigamma(a.detach(), 3), grad, atol=1e-12)


def test_normal_wishart_rejects_bad_shapes_and_df():
    with pytest.raises(ValueError, match="scale_tril"):
        NormalWishart(torch.zeros(2), torch.tensor(1.0), torch.tensor(3.0), torch.eye(3))
    with pytest.raises(ValueError, match="df"):
        NormalWishart(torch.zeros(3), torch.tensor(1.0), torch.tensor(1.5), torch.eye(3), validate_args=True)
