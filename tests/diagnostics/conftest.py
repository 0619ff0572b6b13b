"""Fits shared by the diagnostics tests (session scope: each is run once)."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal

import varinf
from varinf.diagnostics import DiagnosticWarning
from varinf.models import Latent, LinearRegression, Model
from varinf.objectives import ELBO


def correlated_gaussian(rho: float = 0.95, dim: int = 2) -> Model:
    """Target N(0, Σ) with Σ_ij = rho for i != j and 1 on the diagonal (a mean-field misfit)."""
    cov = torch.full((dim, dim), rho, dtype=torch.float64).fill_diagonal_(1.0)
    target = MultivariateNormal(torch.zeros(dim, dtype=torch.float64), covariance_matrix=cov)
    return Model([Latent("x", (dim,))], lambda x: target.log_prob(x), name="correlated_gaussian")


def neals_funnel(dim: int = 4) -> Model:
    """Neal (2003): v ~ N(0, 3^2), x_i | v ~ N(0, e^v) for i < dim."""

    def log_joint(v, x):
        return Normal(0.0, 3.0).log_prob(v) + Normal(0.0, (v / 2).exp()[..., None]).log_prob(x).sum(-1)

    return Model([Latent("v"), Latent("x", (dim - 1,))], log_joint, name="neals_funnel")


def _fit(model, family, steps, **kw):
    # explicit lr, STL and a fixed budget: the tests check the diagnostics, not the engine's defaults
    return varinf.fit(
        model,
        family=family,
        objective=ELBO(gradient="stl"),
        lr=0.01,
        max_steps=steps,
        tol_rel_obj=None,
        dtype=torch.float64,
        seed=0,
        progress=False,
        **kw,
    )


@pytest.fixture(scope="session")
def linreg_fullrank():
    """Full-rank fit of an exactly Gaussian (correlated) posterior with known evidence."""
    return _fit(LinearRegression.synthetic(n=100, d=3, seed=0), "fullrank", 1500)


@pytest.fixture(scope="session")
def correlated_meanfield():
    """Mean-field fit of a strongly correlated Gaussian: variance underestimated along the diagonal."""
    with pytest.warns(DiagnosticWarning):
        return _fit(correlated_gaussian(), "meanfield", 1500)
