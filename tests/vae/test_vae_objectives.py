"""KL annealing, free bits and the learning-rate schedules."""

from __future__ import annotations

import math

import pytest
import torch

from varinf.objectives import ELBO, IWAE
from varinf.vae import VAE, FreeBits, make_objective
from varinf.vae.schedule import learning_rate

from .conftest import TINY, tiny_images


def test_kl_warmup_is_linear_then_flat():
    betas = [make_objective("elbo", beta=2.0, kl_warmup_steps=10, step=s).beta for s in (0, 5, 10, 50)]
    assert betas == [0.0, 1.0, 2.0, 2.0]
    assert isinstance(make_objective("iwae", k=7, gradient="dreg"), IWAE)
    with pytest.raises(ValueError, match="ELBO objective"):
        make_objective("iwae", k=5, beta=0.5)


def test_beta_weights_the_rate_but_not_the_bound():
    torch.manual_seed(0)
    vae = VAE.from_config(TINY["mlp"])
    x = vae.likelihood.prepare(tiny_images(8))
    torch.manual_seed(1)
    plain = vae(x, ELBO())
    torch.manual_seed(1)
    heavy = vae(x, ELBO(beta=3.0))
    torch.testing.assert_close(heavy.bound, plain.bound)
    torch.testing.assert_close(heavy.loss, (plain.distortion + 3.0 * plain.rate).mean())


def test_free_bits_charges_at_least_lambda_per_dimension():
    torch.manual_seed(0)
    vae = VAE.from_config(TINY["mlp"])
    x = vae.likelihood.prepare(tiny_images(8))
    q, p = vae.q(x), vae.p_z()
    kl = torch.distributions.kl_divergence(q.base_dist, p.base_dist).mean(0)  # (D,)
    lam = float(kl.detach().max()) + 1.0  # every dimension below the floor
    torch.manual_seed(1)
    est = FreeBits(nats=lam).loss(q, vae.log_likelihood(x), p)
    torch.manual_seed(1)
    ref = ELBO().loss(q, vae.log_likelihood(x), p)
    torch.testing.assert_close(est.bound, ref.bound)  # the reported bound is still the ELBO
    torch.testing.assert_close(est.loss, ref.distortion.mean() + lam * vae.latent_dim)
    with pytest.raises(ValueError, match="Gaussian"):
        FreeBits(nats=0.1).loss(q, vae.log_likelihood(x), VAE.from_config(TINY["vamp"]).p_z())


def test_learning_rate_schedules():
    burda = [learning_rate("burda", 1e-3, e) for e in (0, 1, 3, 4, 12, 13, 3279, 5000)]
    expected = [1e-3 * 10 ** (-i / 7) for i in (0, 1, 1, 2, 2, 3, 7, 7)]
    assert all(math.isclose(a, b) for a, b in zip(burda, expected))
    assert sum(3**i for i in range(8)) == 3280  # the paper's number of epochs
    assert learning_rate("cosine", 1.0, 0, 10) == 1.0 and math.isclose(learning_rate("cosine", 1.0, 10, 10), 0.01)
    with pytest.raises(ValueError, match="schedule"):
        learning_rate("step", 1.0, 0)
