"""The NumPyro bridge: eight schools beside the same model in torch (log densities up to a constant,
gradients, fits), site names, replicated observations, new data, refusals, JAX's x64 switch left alone."""

from __future__ import annotations

import jax
import numpy as np
import numpyro  # the numpyro extra (in `all`: CI runs these tests)
import numpyro.distributions as dist
import pytest
import torch

import varinf
from varinf.models import EightSchools, ModelError

Y, SIGMA = np.array(EightSchools.Y), np.array(EightSchools.SIGMA)


def eight_schools(sigma, y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("J", len(sigma)):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        theta = numpyro.deterministic("theta", mu + tau * theta_tilde)
        numpyro.sample("y", dist.Normal(theta, sigma), obs=y)


@pytest.fixture(scope="module")
def schools():
    return varinf.from_numpyro(eight_schools, sigma=SIGMA, y=Y)


def test_same_density_gradient_and_fit_as_torch(schools):
    torch_model = EightSchools().double()
    assert schools.name == "eight_schools" and schools.dim == 10
    assert [lat.name for lat in schools.latents] == ["mu", "tau", "theta_tilde"]
    u = torch.randn(9, 10, dtype=torch.float64)  # NumPyro ravels sites by name: mu, tau, theta_tilde as torch
    diff = torch_model.log_density(u) - schools.log_density(u)
    assert torch.allclose(diff, diff[0].expand(9), atol=1e-9) and abs(diff[0].item()) < 1e-6  # both normalized
    x = u.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(schools.log_density(x).sum(), x)
    (g_ref,) = torch.autograd.grad(torch_model.log_density(x).sum(), x)
    assert torch.allclose(g, g_ref, atol=1e-9)
    fits = [varinf.fit(m, family="fullrank", seed=3, progress=False, diagnose=False) for m in (schools, torch_model)]
    a, b = (f.draws(20000, seed=4) for f in fits)
    for k in ("mu", "tau", "theta"):
        sd = b[k].std(0)
        assert ((a[k].mean(0) - b[k].mean(0)).abs() / sd).max() < 0.05


def regression(x, y=None):
    a = numpyro.sample("a", dist.Normal(0.0, 10.0))
    b = numpyro.sample("b", dist.Normal(0.0, 10.0))
    s = numpyro.sample("s", dist.HalfNormal(5.0))
    with numpyro.plate("rows", len(x)):
        numpyro.deterministic("mean", a + b * x)
        numpyro.sample("y", dist.Normal(a + b * x, s), obs=y)


def test_sites_predict_and_new_data(schools):
    res = varinf.fit(schools, seed=0, progress=False, diagnose=False)
    d = res.draws(200, seed=1)
    assert set(d) == {"mu", "tau", "theta_tilde", "theta", "y"} and d["y"].shape == (200, 8)
    assert torch.allclose(d["theta"], d["mu"][:, None] + d["tau"][:, None] * d["theta_tilde"])
    assert torch.equal(res.draws(200, seed=1)["y"], d["y"])  # replicated observations follow the seed
    assert not torch.equal(d["y"][0], torch.as_tensor(Y, dtype=d["y"].dtype))  # drawn afresh, not the data
    pred = res.predict(num_draws=300, seed=2)
    assert set(pred.replicated) == {"y"} and set(pred.derived) == {"theta"}
    with pytest.raises(ModelError, match="change the parameters"):
        res.predict(data={"sigma": SIGMA[:3], "y": None})  # eight schools' latents are per school

    x = np.linspace(-1, 1, 20)
    model = varinf.from_numpyro(regression, x=x, y=1.0 + 2.0 * x + 0.1 * np.sin(7 * x))
    fit = varinf.fit(model, seed=0, progress=False, diagnose=False)
    new = fit.predict(data={"x": np.array([0.0, 1.0, 2.0]), "y": None}, num_draws=2000, seed=3)
    assert new.replicated["y"].shape == (2000, 3) and new.derived["mean"].shape == (2000, 3)
    assert torch.allclose(new.derived["mean"].mean(0), torch.tensor([1.0, 3.0, 5.0], dtype=torch.float64), atol=0.1)


def test_x64_is_scoped():
    before = jax.config.read("jax_enable_x64")
    m = varinf.from_numpyro(eight_schools, SIGMA, y=Y)
    m.log_density(torch.zeros(2, 10, dtype=torch.float64))
    assert jax.config.read("jax_enable_x64") == before
    assert m.log_density_and_score(torch.zeros(3, 10))[1].dtype == torch.float32  # q's dtype, engine in float64


def test_refused_models_name_the_site():
    def discrete():
        numpyro.sample("z", dist.Bernoulli(0.5))
        numpyro.sample("x", dist.Normal(0.0, 1.0))

    with pytest.raises(ModelError, match="sample site 'z' is discrete"):
        varinf.from_numpyro(discrete)

    def subsampled(y):
        mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        with numpyro.plate("rows", len(y), subsample_size=2) as idx:
            numpyro.sample("y", dist.Normal(mu, 1.0), obs=y[idx])

    with pytest.raises(ModelError, match="plate 'rows' subsamples 2 of 5 rows"):
        varinf.from_numpyro(subsampled, np.arange(5.0))

    def with_param():
        s = numpyro.param("s", 1.0)
        numpyro.sample("x", dist.Normal(0.0, s))

    with pytest.raises(ModelError, match="param site 's'"):
        varinf.from_numpyro(with_param)
