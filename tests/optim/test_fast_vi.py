"""Batch-and-Match, Pathfinder and method="auto": exact Gaussian posteriors, the L-BFGS algebra, determinism."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch.distributions import MultivariateNormal

import varinf
from varinf.families import DiagPlusLowRankNormal, EqualMixture, FullRank, LowRank, MeanField, Preconditioned
from varinf.families.preconditioned import TrilAffine
from varinf.models import Latent, LinearRegression, Model, NormalNormal
from varinf.optim import AutoOptions, optimize
from varinf.optim.lbfgs import lbfgs_path
from varinf.optim.methods import bam, bam_lowrank
from varinf.optim.methods.auto import advi_reason
from varinf.optim.methods.bam import BaMState
from varinf.optim.methods.bam_lowrank import LowRankState
from varinf.optim.methods.pathfinder import approximate, inverse_hessian_factors, path_factors
from varinf.optim.stationarity import ParameterStationarity, Schedule, scores

pytestmark = pytest.mark.usefixtures("float64")


def _normal_normal():
    g = torch.Generator().manual_seed(0)
    return NormalNormal(1.5 + torch.randn(20, generator=g), sigma=1.0, prior_scale=10.0)


def _exact(model):
    post = model.exact_posterior()
    if isinstance(post, MultivariateNormal):
        return post.mean, post.covariance_matrix
    return post.mean.reshape(1), post.variance.reshape(1, 1)


@pytest.mark.parametrize("make", [_normal_normal, lambda: LinearRegression.synthetic(n=100, d=5, seed=1)])
def test_bam_reaches_the_exact_gaussian_posterior_within_30_iterations(make):
    model = make()
    mean, cov = _exact(model)
    D = model.dim
    state = BaMState(torch.full((D,), 3.0), 4.0 * torch.eye(D))  # far from the posterior
    score_fn = scores(model.log_density)
    errors = []
    for t in range(1, 31):
        state, _ = bam.step(state, score_fn, 256, D * 256 / t)
        errors.append(max((state.loc - mean).abs().max().item(), (state.cov - cov).abs().max().item()))
        if errors[-1] < 1e-3:
            break
    assert errors[-1] < 1e-3, errors
    assert len(errors) <= 30


def test_bam_method_is_exact_on_linear_regression():
    model = LinearRegression.synthetic(n=60, d=4, seed=2)
    mean, cov = _exact(model)
    res = optimize(model, "fullrank", method="bam", progress=False)
    q = res.posterior()
    assert res.converged and res.num_steps <= 30
    torch.testing.assert_close(q.mean, mean, atol=1e-3, rtol=0)
    torch.testing.assert_close(q.covariance_matrix, cov, atol=1e-3, rtol=0)


def test_lowrank_bam_recovers_a_lowrank_plus_diagonal_gaussian():
    D, k = 12, 2
    g = torch.Generator().manual_seed(3)
    lam = torch.randn(D, k, generator=g)
    psi = 0.5 + torch.rand(D, generator=g)
    mean = torch.randn(D, generator=g)
    target = MultivariateNormal(mean, covariance_matrix=torch.diag(psi) + lam @ lam.T)
    model = Model([Latent("x", (D,))], lambda x: target.log_prob(x), name="lowrank_gaussian")
    state = LowRankState(torch.zeros(D), torch.ones(D), 0.1 * torch.randn(D, k, generator=g))
    state, reason, converged = bam_lowrank.iterate(state, scores(model.log_density), 64, Schedule(30), em_steps=50)
    assert converged, reason
    torch.testing.assert_close(state.loc, mean, atol=1e-3, rtol=0)
    torch.testing.assert_close(torch.diag(state.psi) + state.lam @ state.lam.T, target.covariance_matrix,
                               atol=1e-3, rtol=0)  # fmt: skip


def test_lbfgs_compact_inverse_hessian_equals_the_two_loop_recursion():
    model = LinearRegression.synthetic(n=80, d=6, seed=4)
    path = lbfgs_path(model.log_density, torch.zeros(6))
    alpha, S, Z = path_factors(path, history=4)[-1]
    beta, gamma = inverse_hessian_factors(alpha, S, Z)
    H = torch.diag(alpha) + beta @ gamma @ beta.T

    def two_loop(v):  # Nocedal & Wright, Algorithm 7.4, initial matrix diag(alpha)
        q, a = v.clone(), []
        for i in reversed(range(S.shape[1])):
            a.append((S[:, i] @ q) / (S[:, i] @ Z[:, i]))
            q = q - a[-1] * Z[:, i]
        r = alpha * q
        for i, ai in zip(range(S.shape[1]), reversed(a)):
            r = r + S[:, i] * (ai - (Z[:, i] @ r) / (S[:, i] @ Z[:, i]))
        return r

    H2 = torch.stack([two_loop(e) for e in torch.eye(6)], 1)
    torch.testing.assert_close(H, H2, atol=1e-12, rtol=1e-9)
    assert S.shape[1] == 4  # the last `history` accepted pairs


def test_pathfinder_is_exact_in_one_dimension():
    # one (s, y) pair determines the curvature of a 1-D quadratic exactly: q is the posterior
    model = _normal_normal()
    mean, cov = _exact(model)
    st = approximate(model.log_density, lbfgs_path(model.log_density, torch.zeros(1)), num_draws=64)
    torch.testing.assert_close(st.q.mean, mean, atol=1e-3, rtol=0)
    torch.testing.assert_close(st.q.variance, cov.diagonal(), atol=1e-3, rtol=0)


def test_pathfinder_importance_resampling_recovers_linear_regression():
    model = LinearRegression.synthetic(n=100, d=3, seed=0)
    mean, cov = _exact(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = varinf.fit(model, "fullrank", method="pathfinder", progress=False, diagnose_draws=100_000)
    d = res.diagnostics
    assert res.psis_corrected and d.khat < 0.5
    beta, w = d.draws["beta"], d.psis.weights
    m = w @ beta
    c = (w[:, None] * (beta - m)).T @ (beta - m)
    torch.testing.assert_close(m, mean, atol=1e-3, rtol=0)
    torch.testing.assert_close(c, cov, atol=1e-3, rtol=0)
    assert res.grad_evals < 200 and res.method == "pathfinder"


def test_diag_plus_lowrank_normal_matches_the_dense_gaussian():
    g = torch.Generator().manual_seed(5)
    D, r = 7, 4
    alpha = 0.5 + torch.rand(D, generator=g)
    beta = 0.5 * torch.randn(D, r, generator=g)
    A = torch.randn(r, r, generator=g)
    gamma = 0.1 * (A + A.T)  # indefinite update, small enough to keep the matrix positive definite
    loc = torch.randn(D, generator=g)
    q = DiagPlusLowRankNormal.from_factors(loc, alpha, beta, gamma)
    dense = MultivariateNormal(loc, covariance_matrix=torch.diag(alpha) + beta @ gamma @ beta.T)
    z = dense.sample((50,))
    torch.testing.assert_close(q.log_prob(z), dense.log_prob(z))
    torch.testing.assert_close(q.entropy(), dense.entropy())
    torch.testing.assert_close(q.variance, dense.variance)
    torch.testing.assert_close(q.covariance_matrix, dense.covariance_matrix)
    x, lq = q.rsample_and_log_prob((20,))
    torch.testing.assert_close(lq, dense.log_prob(x))


def test_equal_mixture_density_and_draws():
    parts = [MultivariateNormal(torch.full((2,), m), torch.eye(2)) for m in (-3.0, 3.0)]
    mix = EqualMixture(parts)
    z = torch.randn(5, 2)
    expect = torch.logsumexp(torch.stack([p.log_prob(z) for p in parts]), 0) - math.log(2)
    torch.testing.assert_close(mix.log_prob(z), expect)
    x = mix.sample((4000,))
    assert x.shape == (4000, 2) and abs((x[:, 0] > 0).double().mean().item() - 0.5) < 0.05


def test_tril_affine_is_a_bijection_with_the_right_log_det():
    g = torch.Generator().manual_seed(6)
    L = torch.tril(torch.randn(4, 4, generator=g), -1) + torch.diag(0.5 + torch.rand(4, generator=g))
    t = TrilAffine(torch.randn(4, generator=g), L)
    x = torch.randn(3, 4, generator=g)
    torch.testing.assert_close(t.inv(t(x)), x)
    jac = torch.autograd.functional.jacobian(lambda v: t(v), x[0])
    torch.testing.assert_close(t.log_abs_det_jacobian(x, t(x)), torch.linalg.slogdet(jac)[1].expand(3))


def test_stationarity_detects_drift_and_stops_on_noise():
    g = torch.Generator().manual_seed(7)
    still, moving = ParameterStationarity(tol=0.05), ParameterStationarity(tol=0.05)
    stopped_at = None
    for t in range(400):
        noise = 0.05 * torch.randn(3, generator=g)
        if stopped_at is None and still.update(noise, noise, torch.ones(3)):
            stopped_at = t
        assert not moving.update(noise, noise + 0.05 * t, torch.ones(3))  # a steady climb never looks stationary
    assert stopped_at is not None and stopped_at < 200
    assert still.average()[0].abs().max() < 0.05


def test_auto_is_deterministic_under_a_seed_and_leaves_the_global_rng_alone():
    model = LinearRegression.synthetic(n=50, d=3, seed=8)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = optimize(model, "meanfield", seed=5, progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    b = optimize(model, "meanfield", seed=5, progress=False)
    assert a.route == b.route == ("pathfinder", "bam", "advi polish")
    assert a.grad_evals == b.grad_evals and a.num_steps == b.num_steps
    for pa, pb in zip(a.family.parameters(), b.family.parameters()):
        assert torch.equal(pa, pb)


def test_auto_families_and_their_accuracy():
    # orthogonal design: the posterior has a diagonal covariance, so every family can be exact
    n, d = 64, 3
    X = torch.linalg.qr(torch.randn(n, d, generator=torch.Generator().manual_seed(1)))[0] * 4.0
    y = X @ torch.tensor([1.0, -2.0, 0.5]) + torch.randn(n, generator=torch.Generator().manual_seed(2))
    model = LinearRegression(X, y, noise_scale=1.0, prior_scale=2.0)
    mean, cov = _exact(model)
    sd = cov.diagonal().sqrt()
    for family, kind in (("meanfield", MeanField), ("fullrank", FullRank), ("lowrank", LowRank), ("auto", FullRank)):
        res = optimize(model, family, progress=False, **({"rank": 1} if family == "lowrank" else {}))
        q = res.posterior()
        base = res.family.base if isinstance(res.family, Preconditioned) else res.family
        assert isinstance(base, kind), family
        assert ((q.mean - mean).abs() / sd).max() < 0.05, family
        assert ((q.stddev / sd) - 1).abs().max() < 0.05, family
        assert res.family_name == ("fullrank" if family == "auto" else family)


def test_auto_routes_to_advi_for_advi_settings_and_minibatches():
    m = _normal_normal()
    res = optimize(m, max_steps=200, lr=0.05, progress=False)
    assert res.route == ("advi",) and "lr=0.05" in res.route_reason and res.family_name == "meanfield"
    assert isinstance(res.family.base if isinstance(res.family, Preconditioned) else res.family, MeanField)
    assert "minibatch" in advi_reason("fullrank", None, AutoOptions().updated(batch_size=128))
    assert advi_reason("fullrank", None, AutoOptions()) == ""


def test_auto_summary_reports_psis_corrected_estimates():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = varinf.fit(LinearRegression.synthetic(n=60, d=3, seed=9), progress=False)
    assert res.psis_corrected
    text = str(res.summary())
    assert "fullrank family by auto (pathfinder -> bam)" in text and "PSIS-corrected" in text
    w = res.diagnostics.psis.weights
    rows = res.summary().to_dict()
    torch.testing.assert_close(torch.tensor(rows["beta[0]"]["mean"]), w @ res.diagnostics.draws["beta"][:, 0])
