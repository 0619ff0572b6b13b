"""The PyMC bridge: eight schools beside the same model in torch (log densities up to a constant, gradients,
fits), PyMC's names, dims and coords, replicated observations, new data, refusals."""

from __future__ import annotations

import numpy as np
import pymc as pm  # the pymc extra (in `all`: CI runs these tests)
import pytest
import torch

import varinf
from varinf.models import EightSchools, ModelError

SCHOOLS = ["Choate", "Deerfield", "Phillips Andover", "Phillips Exeter", "Hotchkiss", "Lawrenceville", "St. Paul's",
           "Mt. Hermon"]  # fmt: skip


@pytest.fixture(scope="module")
def schools():
    with pm.Model(coords={"school": SCHOOLS}) as model:
        mu = pm.Normal("mu", 0.0, 5.0)
        tau = pm.HalfCauchy("tau", 5.0)
        theta_tilde = pm.Normal("theta_tilde", 0.0, 1.0, dims="school")
        theta = pm.Deterministic("theta", mu + tau * theta_tilde, dims="school")
        pm.Normal("y", theta, np.array(EightSchools.SIGMA), observed=np.array(EightSchools.Y), dims="school")
    return varinf.from_pymc(model, name="schools")


def test_same_density_gradient_and_fit_as_torch(schools):
    torch_model = EightSchools().double()
    assert schools.dim == 10 and [lat.name for lat in schools.latents] == ["mu", "tau", "theta_tilde"]
    u = torch.randn(9, 10, dtype=torch.float64)  # PyMC's value variables: mu, tau_log__, theta_tilde, as torch
    diff = torch_model.log_density(u) - schools.log_density(u)
    assert torch.allclose(diff, diff[0].expand(9), atol=1e-9) and abs(diff[0].item()) < 1e-6  # both normalized
    x = u.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(schools.log_density(x).sum(), x)
    (g_ref,) = torch.autograd.grad(torch_model.log_density(x).sum(), x)
    assert torch.allclose(g, g_ref, atol=1e-9)
    assert torch.allclose(schools.unconstrain(schools.constrained(u)), u, atol=1e-12)
    fits = [varinf.fit(m, family="fullrank", seed=3, progress=False, diagnose=False) for m in (schools, torch_model)]
    a, b = (f.draws(20000, seed=4) for f in fits)
    for k in ("mu", "tau", "theta"):
        sd = b[k].std(0)
        assert ((a[k].mean(0) - b[k].mean(0)).abs() / sd).max() < 0.05


def test_names_dims_coords_and_replicated_data(schools):
    res = varinf.fit(schools, seed=0, progress=False, diagnose_draws=400)
    rows = [r.name for r in res.summary(n=300, seed=0).rows]
    assert rows[:3] == ["mu", "tau", "theta_tilde[Choate]"] and "theta[Mt. Hermon]" in rows and "y[Choate]" in rows
    d = res.draws(300, seed=1)
    assert torch.allclose(d["theta"], d["mu"][:, None] + d["tau"][:, None] * d["theta_tilde"])
    assert torch.equal(res.draws(300, seed=1)["y"], d["y"])  # replicated observations follow the seed
    spread = (d["y"] - d["theta"]).std(0) / torch.tensor(EightSchools.SIGMA, dtype=torch.float64)
    assert ((spread - 1).abs() < 0.2).all()  # y ~ N(theta, sigma), drawn afresh
    pred = res.predict(num_draws=100, seed=0)
    assert set(pred.replicated) == {"y"} and set(pred.derived) == {"theta"}
    idata = varinf.diagnostics.to_inference_data(res)
    assert list(idata.posterior["theta"].coords["school"].values) == SCHOOLS


def test_new_data_through_data_containers():
    x = np.linspace(-1, 1, 20)
    with pm.Model() as model:
        xs = pm.Data("x", x)
        a = pm.Normal("a", 0.0, 10.0)
        b = pm.Normal("b", 0.0, 10.0)
        s = pm.HalfNormal("s", 5.0)
        mean = pm.Deterministic("mean", a + b * xs)
        pm.Normal("y", mean, s, observed=1.0 + 2.0 * x + 0.1 * np.sin(7 * x), shape=xs.shape)
    fit = varinf.fit(varinf.from_pymc(model), seed=0, progress=False, diagnose=False)
    new = fit.predict(data={"x": np.array([0.0, 1.0, 2.0])}, num_draws=2000, seed=1)
    assert new.replicated["y"].shape == (2000, 3)
    assert torch.allclose(new.derived["mean"].mean(0), torch.tensor([1.0, 3.0, 5.0], dtype=torch.float64), atol=0.1)
    assert np.array_equal(model["x"].get_value(), x)  # the user's model is untouched
    with pytest.raises(ModelError, match="no data container 'z'"):
        fit.predict(data={"z": np.zeros(3)})


def test_discrete_latents_are_refused_by_name():
    with pm.Model() as model:
        pm.Bernoulli("switch", 0.5)
        pm.Normal("x", 0.0, 1.0)
    with pytest.raises(ModelError, match="free variable 'switch' is discrete"):
        varinf.from_pymc(model)
