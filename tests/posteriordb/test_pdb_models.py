"""Every posteriordb model with reference draws: log density vs an independent scipy/numpy implementation
of the Stan program at a reference draw, dimensions and names vs the reference, and the inverse maps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from varinf.posteriordb import REFERENCE_POSTERIORS, build_model, list_posteriors, load_posterior


def _normal(x, loc, scale):
    return stats.norm.logpdf(x, loc, scale).sum()


def _regression(design):
    """Flat-prior Gaussian regressions: the likelihood only (+ an optional sigma prior)."""

    def lp(data, q, sigma_prior=None):
        X, y = design(data)
        beta, sigma = q["beta"], q["sigma"]
        out = _normal(y, X @ beta, sigma)
        return out + (sigma_prior(sigma) if sigma_prior else 0.0)

    return lp


def _kid(d):
    hs, iq = np.array(d["mom_hs"], float), np.array(d["mom_iq"], float)
    return np.column_stack([np.ones_like(hs), hs, iq, hs * iq]), np.array(d["kid_score"], float)


def _kid_z(d):
    hs, iq = np.array(d["mom_hs"], float), np.array(d["mom_iq"], float)
    zh, zi = (hs - hs.mean()) / (2 * hs.std(ddof=1)), (iq - iq.mean()) / (2 * iq.std(ddof=1))
    return np.column_stack([np.ones_like(zh), zh, zi, zh * zi]), np.array(d["kid_score"], float)


def _earn(d):
    h, m = np.array(d["height"], float), np.array(d["male"], float)
    return np.column_stack([np.ones_like(h), h, m, h * m]), np.log(np.array(d["earn"], float))


def _nes(d):
    a = np.array(d["age_discrete"])
    cols = [
        np.ones(len(a)),
        d["real_ideo"],
        d["race_adj"],
        a == 2,
        a == 3,
        a == 4,
        d["educ1"],
        d["gender"],
        d["income"],
    ]
    return np.column_stack([np.asarray(c, float) for c in cols]), np.array(d["partyid7"], float)


def _blr(d, q):
    X, y = np.array(d["X"], float), np.array(d["y"], float)
    return (
        _normal(q["beta"], 0, 10) + stats.halfnorm.logpdf(q["sigma"], scale=10) + _normal(y, X @ q["beta"], q["sigma"])
    )


def _diamonds(d, q):
    X, Y = np.array(d["X"], float), np.array(d["Y"], float)
    Xc = X[:, 1:] - X[:, 1:].mean(0)
    lp = _normal(q["b"], 0, 1) + stats.t.logpdf(q["Intercept"], 3, 8, 10)
    lp += stats.t.logpdf(q["sigma"], 3, 0, 10) - stats.t.logsf(0, 3, 0, 10)
    return lp + _normal(Y, q["Intercept"] + Xc @ q["b"], q["sigma"])


def _eight_centered(d, q):
    y, s = np.array(d["y"], float), np.array(d["sigma"], float)
    lp = stats.halfcauchy.logpdf(q["tau"], scale=5) + _normal(q["mu"], 0, 5)
    return lp + _normal(q["theta"], q["mu"], q["tau"]) + _normal(y, q["theta"], s)


def _eight_noncentered(d, q):
    y, s = np.array(d["y"], float), np.array(d["sigma"], float)
    theta_trans = (q["theta"] - q["mu"]) / q["tau"]  # the Stan parameter behind the reported theta
    lp = _normal(theta_trans, 0, 1) + _normal(y, q["theta"], s)
    return lp + _normal(q["mu"], 0, 5) + stats.halfcauchy.logpdf(q["tau"], scale=5)


def _ark(d, q):
    y, K = d["y"], d["K"]
    lp = _normal(q["alpha"], 0, 10) + _normal(q["beta"], 0, 10) + stats.halfcauchy.logpdf(q["sigma"], scale=2.5)
    for t in range(K, d["T"]):  # Stan's loop, 0-based
        mu = q["alpha"] + sum(q["beta"][k] * y[t - k - 1] for k in range(K))
        lp += stats.norm.logpdf(y[t], mu, q["sigma"])
    return lp


def _garch(d, q):
    y = d["y"]
    sig = [d["sigma1"]]
    for t in range(1, d["T"]):
        sig.append(math.sqrt(q["alpha0"] + q["alpha1"] * (y[t - 1] - q["mu"]) ** 2 + q["beta1"] * sig[-1] ** 2))
    # flat priors; the model's latent beta1_unit = beta1 / (1 - alpha1) adds the Jacobian log(1 - alpha1)
    return _normal(np.array(y), q["mu"], np.array(sig)) + math.log(1 - q["alpha1"])


def _kernel(x, alpha, rho):
    x = np.array(x, float)
    return alpha**2 * np.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * rho**2))


def _gp_pois(d, q):
    L = np.linalg.cholesky(_kernel(d["x"], q["alpha"], q["rho"]) + 1e-10 * np.eye(d["N"]))
    f_tilde = np.linalg.solve(L, q["f"])  # the Stan parameter behind the reported f
    lp = stats.gamma.logpdf(q["rho"], 25, scale=1 / 4) + stats.halfnorm.logpdf(q["alpha"], scale=2)
    return lp + _normal(f_tilde, 0, 1) + stats.poisson.logpmf(d["k"], np.exp(q["f"])).sum()


def _gp_regr(d, q):
    cov = _kernel(d["x"], q["alpha"], q["rho"]) + q["sigma"] * np.eye(d["N"])
    lp = stats.gamma.logpdf(q["rho"], 25, scale=1 / 4) + stats.halfnorm.logpdf(q["alpha"], scale=2)
    return (
        lp
        + stats.halfnorm.logpdf(q["sigma"], scale=1)
        + stats.multivariate_normal.logpdf(d["y"], np.zeros(d["N"]), cov)
    )


def _gauss_mix(d, q):
    mu, s, th = q["mu"], q["sigma"], q["theta"]
    lp = stats.halfnorm.logpdf(s, scale=2).sum() + _normal(mu, 0, 2) + math.log(2)  # ordered pair, normalized
    lp += stats.beta.logpdf(th, 5, 5)
    for yn in d["y"]:
        lp += np.logaddexp(
            math.log(th) + stats.norm.logpdf(yn, mu[0], s[0]), math.log(1 - th) + stats.norm.logpdf(yn, mu[1], s[1])
        )
    return lp


def _forward(log_theta, emit):
    """Stan's forward loop: gamma[1,k] = e_1(k); gamma[t,k] = logsumexp_j(gamma[t-1,j] + log theta[j,k] + e_t(k))."""
    gamma = emit[0].copy()
    for t in range(1, len(emit)):
        gamma = np.array([logsumexp(gamma + log_theta[:, k] + emit[t, k]) for k in range(emit.shape[1])])
    return logsumexp(gamma)


def _hmm_example(d, q):
    y, mu = np.array(d["y"], float), q["mu"]
    emit = stats.norm.logpdf(y[:, None], mu[None, :], 1)
    log_theta = np.log(np.stack([q["theta1"], q["theta2"]]))
    return stats.norm.logpdf(mu[0], 3, 1) + stats.norm.logpdf(mu[1], 10, 1) + _forward(log_theta, emit)


def _hmm_drive(d, q):
    u, v = np.array(d["u"], float), np.array(d["v"], float)
    phi, lam = q["phi"], q["lambda"]
    emit = stats.expon.logpdf(u[:, None], scale=1 / phi) + stats.expon.logpdf(v[:, None], scale=1 / lam)
    alpha = np.array(d["alpha"], float)
    lp = stats.dirichlet.logpdf(q["theta1"], alpha[0]) + stats.dirichlet.logpdf(q["theta2"], alpha[1])
    lp += stats.norm.logpdf(phi, [0, 3], 1).sum() + stats.norm.logpdf(lam, [0, 3], 1).sum()
    return lp + _forward(np.log(np.stack([q["theta1"], q["theta2"]])), emit)


SCIPY = {
    "arK-arK": _ark,
    "bball_drive_event_0-hmm_drive_0": _hmm_drive,
    "diamonds-diamonds": _diamonds,
    "earnings-logearn_interaction": lambda d, q: _regression(_earn)(d, q),
    "eight_schools-eight_schools_centered": _eight_centered,
    "eight_schools-eight_schools_noncentered": _eight_noncentered,
    "garch-garch11": _garch,
    "gp_pois_regr-gp_pois_regr": _gp_pois,
    "gp_pois_regr-gp_regr": _gp_regr,
    "hmm_example-hmm_example": _hmm_example,
    "kidiq-kidscore_interaction": lambda d, q: _regression(_kid)(d, q, lambda s: stats.halfcauchy.logpdf(s, scale=2.5)),
    "kidiq_with_mom_work-kidscore_interaction_z": lambda d, q: _regression(_kid_z)(d, q),
    "low_dim_gauss_mix-low_dim_gauss_mix": _gauss_mix,
    "nes2000-nes": lambda d, q: _regression(_nes)(d, q),
    "sblrc-blr": _blr,
    "sblri-blr": _blr,
}


def _latents_from_reference(model, names, row) -> dict[str, torch.Tensor]:
    """Invert the model's reference_quantities for one reference draw (per model parametrization)."""
    q = _group(names, row)
    t = lambda v: torch.as_tensor(np.asarray(v, float), dtype=torch.float64)
    kind = model.posteriordb_name
    if kind == "eight_schools_noncentered":
        return {"theta_trans": t((q["theta"] - q["mu"]) / q["tau"]), "mu": t(q["mu"]), "tau": t(q["tau"])}
    if kind == "garch11":
        z = {k: t(q[k]) for k in ("mu", "alpha0", "alpha1")}
        return z | {"beta1_unit": t(q["beta1"] / (1 - q["alpha1"]))}
    if kind == "gp_pois_regr":
        L = np.linalg.cholesky(_kernel(model.x.numpy(), q["alpha"], q["rho"]) + 1e-10 * np.eye(model.x.numel()))
        return {"rho": t(q["rho"]), "alpha": t(q["alpha"]), "f_tilde": t(np.linalg.solve(L, q["f"]))}
    if kind == "hmm_drive_0":  # `lambda` is a Python keyword: the latent is lambda_
        return {("lambda_" if k == "lambda" else k): t(v) for k, v in q.items()}
    return {k: t(v) for k, v in q.items()}


def _group(names, row) -> dict[str, np.ndarray | float]:
    out: dict[str, list] = {}
    for n, v in zip(names, row):
        out.setdefault(n.split("[")[0], []).append(v)
    return {k: (np.array(v) if any(n.startswith(k + "[") for n in names) else v[0]) for k, v in out.items()}


@pytest.mark.parametrize("name", REFERENCE_POSTERIORS)
def test_log_joint_matches_scipy_at_reference_draw(shared_data, name):
    post = load_posterior(name, shared_data / "posteriordb")
    model = build_model(post)
    names = list(post.reference.names)
    assert model.reference_names == names
    rows = post.reference.flat[[0, 4321]]
    for row in rows:
        z = _latents_from_reference(model, names, row)
        # the inverse maps are right: the model's reference quantities reproduce the reference draw
        np.testing.assert_allclose(
            model.reference_quantities({k: v[None] for k, v in z.items()})[0], row, rtol=1e-8, atol=1e-8
        )
        expected = SCIPY[name](post.data, _group(names, row))
        got = model.log_joint(**z).item()
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-7), name


@pytest.mark.parametrize("name", REFERENCE_POSTERIORS)
def test_dimensions_batching_and_gradients(shared_data, name):
    model = load_posterior(name, shared_data / "posteriordb").model()
    ref = load_posterior(name, shared_data / "posteriordb").reference
    u = 0.1 * torch.randn(3, 2, model.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    u.requires_grad_(True)
    lp = model.log_density(u)
    assert lp.shape == (3, 2) and torch.isfinite(lp).all()
    lp.sum().backward()
    assert torch.isfinite(u.grad).all()
    one = model.log_density(u.detach()[1, 0])  # batching does not mix draws
    assert one.item() == pytest.approx(lp[1, 0].item(), rel=1e-10)
    z, _ = model.constrain(u.detach())
    assert model.reference_quantities(z).shape == (3, 2, len(ref.names))


def test_list_posteriors_finds_exactly_the_implemented_references(shared_data):
    root = shared_data / "posteriordb"
    with_reference = list_posteriors(root, with_reference=True)
    assert set(REFERENCE_POSTERIORS) <= set(with_reference)
    assert all((root / name / "reference_draws.npz").is_file() for name in with_reference)
    assert len(list_posteriors(root)) > len(REFERENCE_POSTERIORS)
    with pytest.raises(KeyError, match="not implemented"):
        load_posterior("radon_mn-radon_pooled", root).model()
