"""Importance-sampled NLL against a closed form: a linear-Gaussian VAE has p(x) = N(b, W W^T + s^2 I)
and posterior N(S W^T (x - b) / s^2, S), S = (I + W^T W / s^2)^{-1} (diagonal when W's columns are orthogonal)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import MultivariateNormal

from varinf.families import AmortizedNormal
from varinf.vae import VAE, GaussianLikelihood, StandardNormalPrior, VAEConfig, evaluate

D, d, s = 4, 2, 0.3


class _LinearGaussianDecoder(nn.Module):
    """z -> (loc = W z + b, raw scale) shaped (*batch, 2, 1, 2, 2) for GaussianLikelihood."""

    def __init__(self, W, b):
        super().__init__()
        self.W, self.b, self.raw = W, b, torch.tensor(math.log(math.expm1(s - 1e-3)))  # softplus(raw) + 1e-3 = s

    def forward(self, z):
        loc = z @ self.W.T + self.b
        return torch.stack([loc, self.raw.expand_as(loc)], -2).reshape(*z.shape[:-1], 2, 1, 2, 2)


def _linear_gaussian(scale_factor: float, shift: float):
    torch.manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(D, d))
    W, b = Q * torch.tensor([1.0, 0.6]), torch.full((D,), 0.5)
    S = 1 / (1 + (W * W).sum(0) / s**2)  # diagonal posterior covariance
    A = S[:, None] * W.T / s**2
    lin = nn.Linear(D, 2 * d)
    # the encoder sees the likelihood's normalized input u = 2x - 1: loc = A (x - b) + shift = A/2 u + A (1/2 - b) + shift
    with torch.no_grad():  # and softplus(raw) + 1e-4 = sqrt(S) * scale_factor
        lin.weight.copy_(torch.cat([A / 2, torch.zeros(d, D)]))
        raw = torch.log(torch.expm1(S.sqrt() * scale_factor - 1e-4))
        lin.bias.copy_(torch.cat([A @ (0.5 - b) + shift, raw]))
    enc = AmortizedNormal(nn.Sequential(nn.Flatten(-3), lin), d)
    vae = VAE(enc, _LinearGaussianDecoder(W, b), GaussianLikelihood(), StandardNormalPrior(d), (1, 2, 2))
    x = (b + torch.randn(30, d) @ W.T + s * torch.randn(30, D)).reshape(30, 1, 2, 2)
    exact = -MultivariateNormal(b, W @ W.T + s**2 * torch.eye(D)).log_prob(x.reshape(30, D)).mean()
    return vae, x, float(exact) + D * math.log(256)  # evaluate reports discrete-image nats for a Gaussian


@pytest.mark.parametrize("k", [1, 50])
def test_exact_posterior_gives_exact_nll_for_any_k(k):
    vae, x, exact = _linear_gaussian(1.0, 0.0)
    assert abs(evaluate(vae, x, k=k, batch_size=10, progress=False).nll - exact) < 1e-3


def test_nll_converges_to_exact_marginal_and_bounds_order():
    vae, x, exact = _linear_gaussian(2.0, 0.5)  # a mismatched encoder: the bounds are strict
    ev = evaluate(vae, x, k=5000, batch_size=10, progress=False)
    few = evaluate(vae, x.repeat(40, 1, 1, 1), k=5, batch_size=100, progress=False)  # averaged over 40 repeats
    assert abs(ev.nll - exact) < 0.03
    assert -ev.elbo > few.nll + 0.1 > ev.nll + 0.2  # -ELBO > -L_5 > -L_5000 ~ NLL, in expectation
    assert math.isclose(ev.elbo, -(ev.rate + ev.distortion), rel_tol=1e-9)
    assert math.isclose(ev.nll_bpd, ev.nll / (D * math.log(2)))


def test_chunking_does_not_change_the_estimate():
    torch.manual_seed(0)
    vae = VAE.from_config(VAEConfig(data_shape=(1, 4, 4), latents=(2,), hidden=((8,),)))
    x = torch.bernoulli(torch.full((20, 1, 4, 4), 0.3))
    big = evaluate(vae, x, k=400, batch_size=20, progress=False)
    small = evaluate(vae, x, k=400, batch_size=20, max_elements=20 * 16 * 7, progress=False)  # chunks of 7 draws
    assert abs(big.nll - small.nll) < 0.05
