"""Models with data: the plate form equals the log-joint form, one-draw code is mapped over draws, chunked
sums equal one-piece sums (values and gradients), derived/simulate, the subsample estimator, and one-line
errors that name the tensor or function."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from varinf.models import Latent, LogisticRegression, Model, ModelError
from varinf.models.subsample import SubsampledLogDensity, for_draws

pytestmark = pytest.mark.usefixtures("float64")

LATENTS = [Latent("beta", (3,)), Latent("alpha"), Latent("sigma", (), "positive")]


def _data(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    y = (
        X @ torch.tensor([1.0, -0.5, 0.2], dtype=torch.float64)
        + 0.3
        + 0.7 * torch.randn(n, generator=g, dtype=torch.float64)
    )
    return {"X": X, "y": y}


def prior(beta, alpha, sigma):  # one draw: beta (3,), alpha (), sigma ()
    return (
        Normal(0.0, 1.0).log_prob(beta).sum()
        + Normal(0.0, 1.0).log_prob(alpha)
        + Normal(0.0, 1.0).log_prob(sigma.log())
    )


def likelihood(beta, alpha, sigma, data):  # one draw, a batch of rows -> (B,)
    return Normal(data["X"] @ beta + alpha, sigma).log_prob(data["y"])


def plate_model(**kw):
    return Model(LATENTS, log_prior=prior, log_likelihood=likelihood, data=_data(), **kw)


def test_one_draw_plate_form_equals_hand_batched_log_joint():
    data = _data()

    def log_joint(beta, alpha, sigma):  # the old way: sample dims by hand
        mean = beta @ data["X"].T + alpha[..., None]
        lp = (
            Normal(0.0, 1.0).log_prob(beta).sum(-1)
            + Normal(0.0, 1.0).log_prob(alpha)
            + Normal(0.0, 1.0).log_prob(sigma.log())
        )
        return lp + Normal(mean, sigma[..., None]).log_prob(data["y"]).sum(-1)

    old, new = Model(LATENTS, log_joint), plate_model()
    new.check()
    u = torch.randn(4, 3, old.dim)
    torch.testing.assert_close(new.log_density(u), old.log_density(u))
    z, _ = new.constrain(u)
    assert new.log_likelihood(**z).shape == (4, 3, 200)
    assert new.num_rows == 200 and new.has_plate and not old.has_plate


@pytest.mark.parametrize("grad", [False, True])
def test_chunked_sums_equal_one_piece(grad):
    model = plate_model()
    u = torch.randn(5, model.dim, requires_grad=grad)
    whole = model.log_density(u)
    g_whole = torch.autograd.grad(whole.sum(), u)[0] if grad else None
    model.max_memory = 5 * 8 * 8 * 2 * 7  # 7 rows per chunk: 29 chunks
    chunked = model.log_density(u)
    torch.testing.assert_close(chunked, whole, rtol=1e-12, atol=1e-10)
    if grad:
        torch.testing.assert_close(torch.autograd.grad(chunked.sum(), u)[0], g_whole, rtol=1e-12, atol=1e-10)


def test_chunked_sums_have_the_one_piece_hessian():
    """Second order through the chunked sum (the Laplace start's Hessian): exact, not the prior's alone."""
    model = plate_model()
    u = torch.randn(model.dim)

    def f(x):
        return model.log_density(x[None])[0]

    whole = torch.autograd.functional.hessian(f, u)
    model.max_memory = 1 * 8 * 8 * 2 * 7  # one draw with gradients: 7 rows per chunk, 29 chunks
    chunked = torch.autograd.functional.hessian(f, u)
    torch.testing.assert_close(chunked, whole, rtol=1e-10, atol=1e-9)
    prior_only = torch.autograd.functional.hessian(
        lambda x: model.log_prior(**model.constrain(x[None])[0])[0] + model.constrain(x[None])[1][0], u
    )
    assert (chunked - prior_only).abs().max() > 10  # the likelihood's curvature is there
    # a third derivative cannot be exact here: an error, not a silently wrong number
    x = u.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x, create_graph=True)
    (h0,) = torch.autograd.grad(g[0], x, create_graph=True)
    with pytest.raises(RuntimeError, match="third derivative"):
        torch.autograd.grad(h0[0], x)


def test_vectorized_subclass_and_derived_and_simulate():
    m = LogisticRegression.synthetic(n=300, d=2)
    assert m._vectorized and m.has_plate
    z = {"beta": torch.randn(7, 2), "alpha": torch.randn(7)}
    rep = m.simulate_data(z)
    assert rep["y"].shape == (7, 300) and set(rep["y"].unique().tolist()) <= {0.0, 1.0}
    one_draw = Model(
        [Latent("mu"), Latent("tau", (), "positive"), Latent("eta", (4,))],
        lambda mu, tau, eta: Normal(0.0, 1.0).log_prob(eta).sum() + Normal(0.0, 5.0).log_prob(mu) - tau,
        vectorized=False,
        derived=lambda mu, tau, eta: {"theta": mu + tau * eta},
    )
    zz = {"mu": torch.randn(6), "tau": torch.rand(6) + 0.1, "eta": torch.randn(6, 4)}
    torch.testing.assert_close(
        one_draw.derived_quantities(zz)["theta"], zz["mu"][:, None] + zz["tau"][:, None] * zz["eta"]
    )


def test_simulate_draws_independently_per_draw():
    m = Model([Latent("p", (), "unit_interval")], log_prior=lambda p: torch.zeros(()),
              log_likelihood=lambda p, data: Bernoulli(p).log_prob(data["y"]), data={"y": torch.ones(2000)},
              simulate=lambda p, data: {"y": Bernoulli(p).sample(data["y"].shape)})  # fmt: skip
    rep = m.simulate_data({"p": torch.tensor([0.1, 0.1, 0.9])})["y"]
    assert rep.shape == (3, 2000)
    assert not torch.equal(rep[0], rep[1])  # different noise for each draw
    assert abs(rep[0].mean() - 0.1) < 0.03 and abs(rep[2].mean() - 0.9) < 0.03


def test_subsample_estimate_is_accurate_and_states_its_error():
    m = LogisticRegression.synthetic(n=30_000, d=4, seed=1).double()
    u_hat = torch.zeros(m.dim)
    # fit-free anchor: the mode by a few Newton steps
    for _ in range(8):
        v = u_hat.clone().requires_grad_(True)
        g = torch.autograd.grad(m.log_density(v[None])[0], v, create_graph=True)[0]
        H = torch.stack([torch.autograd.grad(g[i], v, retain_graph=True)[0] for i in range(m.dim)])
        u_hat = u_hat - torch.linalg.solve(H, g.detach())
    sd = torch.linalg.inv(-H).diagonal().sqrt().detach()
    est = SubsampledLogDensity(m, u_hat, rows=3000)
    u = u_hat + sd * torch.randn(400, m.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1.5
    exact, approx = m.log_density(u), est(u)
    err = (approx - exact).abs()
    assert est.last_se.shape == (400,) and float(est.last_se.max()) < 0.05
    assert float(err.max()) < 0.05  # nats, over 30,000 rows with 10% of them
    assert float((err / est.last_se).square().mean()) < 4  # the stated error is the right size
    assert for_draws(m, u_hat) is m  # below EXACT_ROWS: exact evaluation


def test_mismatched_rows_name_the_tensor():
    with pytest.raises(ModelError, match=r"data\['y'\] has 199 rows but data\['X'\] has 200"):
        Model(
            LATENTS, log_prior=prior, log_likelihood=likelihood, data={"X": torch.randn(200, 3), "y": torch.randn(199)}
        )
    with pytest.raises(ModelError, match=r"data\['y'\] contains NaN"):
        Model(LATENTS, log_prior=prior, log_likelihood=likelihood, data={"y": torch.tensor([0.0, math.nan])})
    with pytest.raises(ModelError, match="log_likelihood needs data"):
        Model(LATENTS, log_prior=prior, log_likelihood=likelihood)
    with pytest.raises(ModelError, match="both log_prior and log_likelihood"):
        Model(LATENTS, log_likelihood=likelihood, data=_data())


def test_likelihood_summed_over_rows_is_a_one_line_error():
    m = Model(LATENTS, log_prior=prior, log_likelihood=lambda beta, alpha, sigma, data: likelihood(beta, alpha, sigma, data).sum(),
              data=_data())  # fmt: skip
    with pytest.raises(
        ModelError, match=r"log_likelihood returned shape \(\) .* expected \(4,\).*one value per row"
    ) as e:
        m.check()
    assert "\n" not in str(e.value)
    bad_prior = Model(LATENTS, log_prior=lambda beta, alpha, sigma: Normal(0.0, 1.0).log_prob(beta),
                      log_likelihood=likelihood, data=_data())  # fmt: skip
    with pytest.raises(ModelError, match=r"log_prior returned shape \(3,\) per draw"):
        bad_prior.check()


def test_non_finite_likelihood_names_the_row():
    data = _data(50)
    data["y"][17] = 0.5
    m = Model([Latent("p", (), "unit_interval")], log_prior=lambda p: torch.zeros(()),
              log_likelihood=lambda p, data: Bernoulli(p).log_prob(data["y"].clamp(0, 1)) + (data["y"] - 0.5).abs().log(),
              data={"y": data["y"]})  # fmt: skip
    with pytest.raises(ModelError, match="data row 17"):
        m.check()
