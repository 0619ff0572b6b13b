"""Model: batching, constrain/unconstrain, ADVI Jacobian, and error messages that name the latent."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Gamma, Normal, constraints

from varinf.models import EXAMPLES, Latent, Model, ModelError, load_example


def test_log_density_includes_jacobian():
    # p(tau) = Gamma(2, 1); in u = log tau the density is Gamma(e^u) e^u.
    m = Model([Latent("tau", (), "positive")], lambda tau: Gamma(2.0, 1.0).log_prob(tau))
    u = torch.tensor([[-0.3], [0.4], [1.2]])
    expected = Gamma(2.0, 1.0).log_prob(u.exp()).squeeze(-1) + u.squeeze(-1)
    torch.testing.assert_close(m.log_density(u), expected)


def test_unconstrained_density_normalizes():
    # integrate exp(log_density) over u on a grid: should be 1 (the Jacobian makes it a density in u)
    m = Model([Latent("p", (), "unit_interval")], lambda p: torch.distributions.Beta(2.0, 3.0).log_prob(p))
    u = torch.linspace(-15, 15, 20001).unsqueeze(-1)
    mass = torch.trapezoid(m.log_density(u).exp(), u.squeeze(-1))
    assert abs(mass.item() - 1) < 1e-4


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_batch_over_leading_dims(name):
    m = load_example(name)
    m.check()
    u = torch.randn(4, 3, m.dim) * 0.5
    lp = m.log_density(u)
    assert lp.shape == (4, 3)
    single = torch.stack([m.log_density(u[i, j]) for i in range(4) for j in range(3)]).reshape(4, 3)
    torch.testing.assert_close(lp, single, rtol=1e-5, atol=1e-4)


def test_constrain_unconstrain_round_trip():
    m = Model(
        [Latent("a", (2,)), Latent("s", (3,), "positive"), Latent("w", (4,), "simplex"), Latent("o", (3,), "ordered")],
        lambda a, s, w, o: a.sum(-1) * 0,
    )
    assert m.dim == 2 + 3 + 3 + 3
    u = torch.randn(7, m.dim)
    z, _ = m.constrain(u)
    assert z["w"].shape == (7, 4) and torch.allclose(z["w"].sum(-1), torch.ones(7))
    assert bool((z["o"].diff(dim=-1) > 0).all())
    torch.testing.assert_close(m.unconstrain(z), u, atol=1e-5, rtol=1e-5)


def test_nan_at_init_names_the_latent():
    # `sigma` is declared real but used as a scale: log of a negative number at the random check point
    y = torch.tensor([0.1, -0.4])

    def log_joint(mu, sigma):
        resid = (y - mu[..., None]) / sigma[..., None]
        return Normal(0, 1).log_prob(mu) + (-torch.log(sigma)[..., None] - 0.5 * resid**2).sum(-1)

    m = Model([Latent("mu"), Latent("sigma")], log_joint)
    with pytest.raises(ModelError, match="'sigma'") as e:
        m.check()
    assert "support" in str(e.value)


def test_wrong_shape_is_reported():
    m = Model([Latent("mu")], lambda mu: Normal(0, 1).log_prob(mu).sum())  # sums over the sample dim too
    with pytest.raises(ModelError, match="returned shape"):
        m.check()


def test_unsupported_constraint():
    with pytest.raises(ModelError, match=r"'x'.*no bijection"):
        Model([Latent("x", (3,), constraints.integer_interval(0, 3))], lambda x: x.sum(-1))


def test_shape_support_mismatch():
    with pytest.raises(ModelError, match="'w'"):
        Model([Latent("w", (), "simplex")], lambda w: w)


def test_duplicate_names():
    with pytest.raises(ModelError, match="duplicate"):
        Model([Latent("a"), Latent("a")], lambda a: a)


def test_non_vectorized_log_joint_is_mapped():
    def one_draw(mu):  # written for a single draw: sums everything
        return Normal(0.0, 1.0).log_prob(mu).sum()

    m = Model([Latent("mu", (2,))], one_draw, vectorized=False)
    u = torch.randn(5, 2)
    torch.testing.assert_close(m.log_density(u), Normal(0.0, 1.0).log_prob(u).sum(-1))


def test_non_vectorized_log_joint_at_a_single_draw():
    # one unbatched point (no sample dims): the fused single-draw ADVI step evaluates the model this way
    def one_draw(mu, s):
        return Normal(0.0, s).log_prob(mu).sum()

    m = Model([Latent("mu", (2,)), Latent("s", (), "positive")], one_draw, vectorized=False)
    u = torch.randn(3)
    out = m.log_density(u)
    assert out.shape == ()
    torch.testing.assert_close(out, m.log_density(u[None])[0])


def test_exact_evidence_normal_normal_by_quadrature():
    m = load_example("normal_normal")
    u = torch.linspace(-10, 10, 40001, dtype=torch.float64).unsqueeze(-1)
    m = m.double()
    log_z = torch.logsumexp(m.log_density(u), 0) + math.log(20 / 40000)
    assert abs(log_z.item() - m.exact_log_evidence()) < 1e-6


def test_bounded_latents_take_their_shape_from_the_bounds_as_torch_broadcasts():
    # affine parts of bounded supports are broadcast in Python (torch.broadcast_shapes imports sympy)
    lo, hi = torch.zeros(3), torch.tensor([1.0, 2.0, 3.0])
    m = Model([Latent("x", (3,), constraints.interval(lo, hi)), Latent("s", (), "positive")],
              lambda x, s: -x.sum(-1) - s)  # fmt: skip
    assert m.dim == 4
    z, _ = m.constrain(torch.zeros(2, 4))
    torch.testing.assert_close(z["x"], (lo + hi).expand(2, 3) / 2)
    with pytest.raises(ModelError, match=r"latent 'x': shape \(2,\) does not fit support"):
        Model([Latent("x", (2,), constraints.interval(lo, hi))], lambda x: -x.sum(-1))
