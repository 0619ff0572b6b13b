"""The VAE's bounds against quadrature, and what KL annealing, β, free bits and the step-size schedules change.

A VAE with one latent dimension has :math:`\\log p(x) = \\log\\int p(x\\mid z)\\,N(z; 0, 1)\\,dz`, its ELBO, rate and
distortion as one-dimensional integrals: quadrature on a fine grid gives them to ~1e-6 nats, independently of
the Monte Carlo estimators under test.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from varinf.objectives import ELBO, IWAE
from varinf.vae import VAE, FreeBits, VAEConfig, make_objective
from varinf.vae.schedule import learning_rate

from .conftest import TINY, tiny_images


@pytest.fixture(scope="module")
def one_latent():
    """An untrained 1-latent VAE, four images, and per image the quadrature log p(x), ELBO, rate, distortion."""
    torch.manual_seed(0)
    vae = VAE.from_config(VAEConfig(data_shape=(1, 4, 4), latents=(1,), hidden=((8,),))).double()
    x = vae.likelihood.prepare(tiny_images(4), torch.Generator().manual_seed(0)).double()
    z = torch.linspace(-12.0, 12.0, 24_001, dtype=torch.float64)
    dz = (z[1] - z[0]).item()
    with torch.no_grad():
        log_lik = vae.log_likelihood(x)(z[:, None, None])  # (G, B) log p(x_b | z_g)
        q = vae.q(x).base_dist  # Normal, batch (B, 1)
        loc, scale = q.loc[:, 0], q.scale[:, 0]
    log_prior = -0.5 * z.square() - 0.5 * math.log(2 * math.pi)
    log_px = torch.logsumexp(log_lik + log_prior[:, None], 0) + math.log(dz)
    qz = torch.distributions.Normal(loc, scale).log_prob(z[:, None]).exp() * dz  # (G, B), sums to 1
    assert torch.allclose(qz.sum(0), torch.ones(4, dtype=torch.float64), atol=1e-9)
    distortion = -(qz * log_lik).sum(0)
    rate = 0.5 * (loc.square() + scale.square() - 1) - scale.log()  # KL(N(m, s^2) || N(0, 1))
    return vae, x, {"log_px": log_px, "elbo": -(distortion + rate), "rate": rate, "distortion": distortion}


def _mean_se(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image mean and standard error over repeats ``(R, B)``."""
    return v.mean(0), v.std(0) / math.sqrt(v.shape[0])


def test_elbo_rate_and_distortion_match_quadrature(one_latent):
    vae, x, exact = one_latent
    R = 4000
    torch.manual_seed(1)
    with torch.no_grad():
        est = vae(x.repeat(R, 1, 1, 1), ELBO())  # analytic rate, one draw for the distortion
    torch.testing.assert_close(est.rate[:4], exact["rate"], rtol=1e-9, atol=1e-9)
    for name, v in (("distortion", est.distortion), ("elbo", est.bound)):
        mean, se = _mean_se(v.reshape(R, 4))
        assert bool(((mean - exact[name]).abs() < 4 * se).all()), (name, mean, exact[name], se)
    gap = exact["log_px"] - exact["elbo"]  # KL(q(z|x) || p(z|x)) > 0: an untrained encoder is not the posterior
    assert bool((gap > 1e-3).all()), gap


def test_iwae_climbs_from_the_elbo_to_log_px(one_latent):
    """IWAE(K=1) is the ELBO, E[IWAE_K] increases with K, and at K = 2000 it is within 0.01 nats of log p(x)."""
    vae, x, exact = one_latent
    R = 400
    xr = x.repeat(R, 1, 1, 1)
    torch.manual_seed(2)
    with torch.no_grad():
        means = {}
        for k in (1, 10, 100):
            mean, se = _mean_se(vae(xr, IWAE(num_particles=k)).bound.reshape(R, 4))
            assert bool((mean < exact["log_px"] + 4 * se).all()), (k, mean, exact["log_px"])
            means[k] = (mean, se)
        big = vae(x.repeat(4, 1, 1, 1), IWAE(num_particles=2000)).bound.reshape(4, 4).mean(0)
    m1, s1 = means[1]
    assert bool(((m1 - exact["elbo"]).abs() < 4 * s1).all())
    for lo, hi in ((1, 10), (10, 100)):
        assert bool((means[hi][0] > means[lo][0]).all()), (lo, hi, means[lo][0], means[hi][0])
    torch.testing.assert_close(big, exact["log_px"], atol=0.01, rtol=0)


def test_kl_warmup_is_linear_then_flat():
    betas = [make_objective("elbo", beta=2.0, kl_warmup_steps=10, step=s).beta for s in (0, 5, 10, 50)]
    assert betas == [0.0, 1.0, 2.0, 2.0]
    assert isinstance(make_objective("iwae", k=7, gradient="dreg"), IWAE)
    with pytest.raises(ValueError, match="ELBO objective"):
        make_objective("iwae", k=5, beta=0.5)


def _grads(vae, loss) -> torch.Tensor:
    vae.zero_grad()
    loss.backward()
    return torch.cat([p.grad.flatten() for p in vae.parameters() if p.grad is not None])


def test_beta_weights_the_rate_in_the_gradient_but_not_the_bound():
    """β-VAE: the bound reported is the ELBO whatever β; the gradient is ∇distortion + β ∇rate."""
    torch.manual_seed(0)
    vae = VAE.from_config(TINY["mlp"])
    x = vae.likelihood.prepare(tiny_images(8))
    torch.manual_seed(1)
    heavy = vae(x, ELBO(beta=3.0))
    g_heavy = _grads(vae, heavy.loss)
    torch.manual_seed(1)
    plain = vae(x, ELBO())
    torch.testing.assert_close(heavy.bound, plain.bound)
    torch.testing.assert_close(plain.loss, -plain.bound.mean())  # β = 1: the loss is the negative ELBO
    torch.manual_seed(1)
    q = vae.q(x)
    distortion = -vae.log_likelihood(x)(q.rsample((1,))).mean(0)
    rate = torch.distributions.kl_divergence(q, vae.p_z())
    g_ref = _grads(vae, distortion.mean() + 3.0 * rate.mean())
    torch.testing.assert_close(g_heavy, g_ref, rtol=1e-5, atol=1e-6)


def test_free_bits_stop_the_rate_gradient_of_dimensions_below_the_floor():
    """Free bits: a latent dimension whose batch-averaged KL is under λ pays λ flat (no gradient pulls it
    towards the prior); one above pays its KL. The bound reported is still the ELBO."""
    torch.manual_seed(0)
    vae = VAE.from_config(TINY["mlp"])
    x = vae.likelihood.prepare(tiny_images(8))
    with torch.no_grad():
        q, p = vae.q(x), vae.p_z()
        kl = torch.distributions.kl_divergence(q.base_dist, p.base_dist).mean(0)  # (D,)
    lo, hi = kl.sort().values[:2].tolist()
    lam = 0.5 * (lo + hi)  # the smallest dimension below the floor, the others above
    above = kl > lam
    assert 0 < int(above.sum()) < vae.latent_dim
    torch.manual_seed(1)
    est = FreeBits(nats=lam).loss(vae.q(x), vae.log_likelihood(x), vae.p_z())
    g_free = _grads(vae, est.loss)
    torch.manual_seed(1)
    ref = ELBO().loss(vae.q(x), vae.log_likelihood(x), vae.p_z())
    torch.testing.assert_close(est.bound, ref.bound)
    torch.testing.assert_close(est.loss, ref.distortion.mean() + kl[above].sum() + lam * int((~above).sum()))
    torch.manual_seed(1)
    q = vae.q(x)
    distortion = -vae.log_likelihood(x)(q.rsample((1,))).mean(0)
    kl_dims = torch.distributions.kl_divergence(q.base_dist, vae.p_z().base_dist).mean(0)
    g_ref = _grads(vae, distortion.mean() + kl_dims[above].sum())
    torch.testing.assert_close(g_free, g_ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="Gaussian"):
        FreeBits(nats=0.1).loss(q, vae.log_likelihood(x), VAE.from_config(TINY["vamp"]).p_z())


def test_burda_schedule_stages_last_three_to_the_i_epochs():
    """Burda et al.: stage i lasts 3^i epochs at lr 10^(-i/7), i = 0..7 (3280 epochs), the last rate kept after."""
    rates = [learning_rate("burda", 1e-3, e) for e in range(4000)]
    changes = [e for e in range(1, 4000) if rates[e] != rates[e - 1]]
    ends, total = [], 0
    for i in range(7):
        total += 3**i
        ends.append(total)
    assert changes == ends  # a new stage begins after 1, 3, 9, ... epochs
    stages = [rates[0], *(rates[e] for e in changes)]
    assert all(math.isclose(b / a, 10 ** (-1 / 7)) for a, b in itertools.pairwise(stages))
    assert math.isclose(rates[-1], 1e-4) and ends[-1] + 3**7 == 3280  # the paper's 3280 epochs end at lr / 10


def test_cosine_schedule_falls_from_lr_to_one_percent():
    rates = [learning_rate("cosine", 2.0, e, 100) for e in range(101)]
    assert rates[0] == 2.0 and math.isclose(rates[100], 0.02) and math.isclose(rates[50], 2.0 * 0.505)
    assert all(b < a for a, b in itertools.pairwise(rates))
    assert learning_rate("cosine", 2.0, 500, 100) == rates[100] and learning_rate("constant", 0.3, 77) == 0.3
    with pytest.raises(ValueError, match="schedule"):
        learning_rate("step", 1.0, 0)
