"""Every VAE variant through the same invariants: shapes, gradients reach every parameter, Distributions."""

from __future__ import annotations

import math

import pytest
import torch

from varinf.objectives import ELBO, IWAE
from varinf.vae import VAE, VAEConfig

from .conftest import TINY, tiny_images


def test_shapes_and_gradients(tiny_vae):
    _, vae = tiny_vae
    x = vae.likelihood.prepare(tiny_images(5, vae.data_shape))
    q, p_z = vae.q(x), vae.p_z()
    D = vae.latent_dim
    assert q.batch_shape == (5,) and q.event_shape == (D,) and p_z.event_shape == (D,)
    z = q.rsample((7,))
    assert z.shape == (7, 5, D) and q.log_prob(z).shape == (7, 5) and p_z.log_prob(z).shape == (7, 5)
    p_x = vae.p_x(z)
    assert p_x.batch_shape == (7, 5) and p_x.event_shape == vae.data_shape
    assert vae.log_likelihood(x)(z).shape == (7, 5)
    est = vae(x, IWAE(num_particles=4, gradient="dreg"))
    est.loss.backward()
    for pname, p in vae.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname
    assert vae.sample(3).shape == (3, *vae.data_shape) and vae.sample(3).dtype == torch.uint8
    assert vae.reconstruct(x).shape == x.shape


def test_iwae_k1_equals_monte_carlo_elbo(tiny_vae):
    """IWAE with K=1 is the ELBO: same draws, same value, per observation."""
    _, vae = tiny_vae
    x = vae.likelihood.prepare(tiny_images(6, vae.data_shape))
    torch.manual_seed(3)
    a = vae(x, IWAE(num_particles=1))
    torch.manual_seed(3)
    b = vae(x, ELBO(analytic=False))
    torch.testing.assert_close(a.bound, b.bound, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(b.bound, -(b.rate + b.distortion), rtol=1e-5, atol=1e-4)


def test_analytic_rate_matches_monte_carlo():
    torch.manual_seed(0)
    vae = VAE.from_config(TINY["mlp"])
    x = vae.likelihood.prepare(tiny_images(4))
    analytic = vae(x, ELBO(num_particles=1)).rate
    mc = vae(x, ELBO(num_particles=20000, analytic=False)).rate
    torch.testing.assert_close(mc, analytic, atol=0.05, rtol=0.02)


def test_bad_input_is_named():
    vae = VAE.from_config(TINY["mlp"])
    with pytest.raises(ValueError, match=r"shape \(B, 1, 4, 4\)"):
        vae.q(torch.zeros(3, 16))
    with pytest.raises(ValueError, match="two stochastic layers"):
        VAEConfig(architecture="conv", latents=(4, 2))
    with pytest.raises(ValueError, match="unknown likelihood"):
        VAEConfig(likelihood="poisson")
    with pytest.raises(ValueError, match="unknown VAE config keys"):
        VAEConfig.from_dict({"latent": 3})


def test_presets_match_the_iwae_paper():
    one = VAE.from_config(VAEConfig.preset("iwae1"))
    two = VAE.from_config(VAEConfig.preset("iwae2"))
    assert one.latent_dim == 50 and two.latent_dim == 150
    sizes = [m.out_features for m in one.encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert sizes == [200, 200, 100]  # 2 x 200 tanh, then mean and scale of 50 latents
    n_params = sum(p.numel() for p in one.parameters())
    assert n_params == (784 * 200 + 200) + (200 * 200 + 200) + (200 * 100 + 100) + (50 * 200 + 200) + (
        200 * 200 + 200
    ) + (200 * 784 + 784)
    assert math.isclose(VAE.from_config(VAEConfig.preset("logistic")).likelihood.num_params, 2)
