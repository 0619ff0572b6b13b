"""NumPyro versions of all 16 posteriordb posteriors with reference draws, for side-by-side benchmarks.

``numpyro_model(post, model)`` returns a no-argument NumPyro model whose sample sites carry varinf's latent names
(so ``model.reference_quantities`` maps their constrained draws to the reference quantities). All are written here
from the Stan programs: five read posteriordb's data dictionary, the others the data varinf's model already
prepared (design matrices as the Stan ``transformed data`` blocks build them). Precision follows JAX's x64 setting
(the caller's choice). ``tests/benchmarks/test_numpyro_ports.py`` checks that each port's log joint equals the
varinf model's up to a constant. Never imported by the package.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

__all__ = ["numpyro_model", "ported"]

FLAT_REAL = dist.ImproperUniform(dist.constraints.real, (), ())
FLAT_POS = dist.ImproperUniform(dist.constraints.positive, (), ())


def eight_schools_noncentered(data):
    y, sigma = jnp.array(data["y"], float), jnp.array(data["sigma"], float)
    theta_trans = numpyro.sample("theta_trans", dist.Normal(0, 1).expand([data["J"]]).to_event(1))
    mu = numpyro.sample("mu", dist.Normal(0, 5))
    tau = numpyro.sample("tau", dist.HalfCauchy(5))
    theta = numpyro.deterministic("theta", mu + tau * theta_trans)
    numpyro.sample("y", dist.Normal(theta, sigma), obs=y)


def ark(data):
    y, K = jnp.array(data["y"], float), data["K"]
    alpha = numpyro.sample("alpha", dist.Normal(0, 10))
    beta = numpyro.sample("beta", dist.Normal(0, 10).expand([K]).to_event(1))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    lags = jnp.stack([y[K - k : len(y) - k] for k in range(1, K + 1)], axis=1)
    numpyro.sample("y", dist.Normal(alpha + lags @ beta, sigma), obs=y[K:])


def garch11(data):
    y = jnp.array(data["y"], float)
    mu = numpyro.sample("mu", FLAT_REAL)
    alpha0 = numpyro.sample("alpha0", FLAT_POS)
    alpha1 = numpyro.sample("alpha1", dist.Uniform(0, 1))
    beta1_unit = numpyro.sample("beta1_unit", dist.Uniform(0, 1))
    beta1 = numpyro.deterministic("beta1", (1 - alpha1) * beta1_unit)
    numpyro.factor("jacobian", jnp.log1p(-alpha1))  # flat density on (alpha1, beta1), as in varinf's model

    def step(var_prev, y_prev):
        var = alpha0 + alpha1 * (y_prev - mu) ** 2 + beta1 * var_prev
        return var, var

    _, var = jax.lax.scan(step, data["sigma1"] ** 2, y[:-1])
    var = jnp.concatenate([jnp.array([data["sigma1"] ** 2]), var])
    numpyro.sample("y", dist.Normal(mu, jnp.sqrt(var)), obs=y)


def gp_regr(data):
    x, y = jnp.array(data["x"], float), jnp.array(data["y"], float)
    rho = numpyro.sample("rho", dist.Gamma(25, 4))
    alpha = numpyro.sample("alpha", dist.HalfNormal(2))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1))
    K = alpha**2 * jnp.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * rho**2)) + sigma * jnp.eye(len(x))
    numpyro.sample("y", dist.MultivariateNormal(jnp.zeros(len(x)), covariance_matrix=K), obs=y)


def low_dim_gauss_mix(data):
    y = jnp.array(data["y"], float)
    mu = numpyro.sample("mu", dist.ImproperUniform(dist.constraints.ordered_vector, (), (2,)))
    numpyro.factor("mu_prior", dist.Normal(0, 2).log_prob(mu).sum() + jnp.log(2.0))  # normalized on the ordered set
    sigma = numpyro.sample("sigma", dist.HalfNormal(2).expand([2]).to_event(1))
    theta = numpyro.sample("theta", dist.Beta(5, 5))
    a = jnp.log(theta) + dist.Normal(mu[0], sigma[0]).log_prob(y)
    b = jnp.log1p(-theta) + dist.Normal(mu[1], sigma[1]).log_prob(y)
    numpyro.factor("y", jnp.logaddexp(a, b).sum())


_BY_POSTERIOR = {  # written from the data dictionary (the first five ports, from numpyro_svi.py)
    "eight_schools-eight_schools_noncentered": eight_schools_noncentered,
    "arK-arK": ark,
    "garch-garch11": garch11,
    "gp_pois_regr-gp_regr": gp_regr,
    "low_dim_gauss_mix-low_dim_gauss_mix": low_dim_gauss_mix,
}


def _a(t) -> jnp.ndarray:
    return jnp.asarray(np.asarray(t.detach().cpu().double()))


def _linear(model):  # NormalLinearModel: blr, kidscore_interaction(_z), logearn_interaction, nes
    X, y = _a(model.X), _a(model.y)

    def fn():
        if model.beta_scale is None:
            beta = numpyro.sample("beta", dist.ImproperUniform(dist.constraints.real_vector, (), (X.shape[1],)))
        else:
            beta = numpyro.sample("beta", dist.Normal(0, model.beta_scale).expand([X.shape[1]]).to_event(1))
        if model.sigma_prior is None:
            sigma = numpyro.sample("sigma", FLAT_POS)
        elif model.sigma_prior[0] == "half_normal":
            sigma = numpyro.sample("sigma", dist.HalfNormal(model.sigma_prior[1]))
        else:
            sigma = numpyro.sample("sigma", dist.HalfCauchy(model.sigma_prior[1]))
        numpyro.sample("y", dist.Normal(X @ beta, sigma), obs=y)

    return fn


def _diamonds(model):
    Xc, Y = _a(model.Xc), _a(model.Y)

    def fn():
        b = numpyro.sample("b", dist.Normal(0, 1).expand([Xc.shape[1]]).to_event(1))
        intercept = numpyro.sample("Intercept", dist.StudentT(3.0, 8.0, 10.0))
        sigma = numpyro.sample("sigma", dist.LeftTruncatedDistribution(dist.StudentT(3.0, 0.0, 10.0), 0.0))
        numpyro.sample("Y", dist.Normal(intercept + Xc @ b, sigma), obs=Y)

    return fn


def _eight_schools_centered(model):
    y, sigma = _a(model.y), _a(model.sigma)

    def fn():
        mu = numpyro.sample("mu", dist.Normal(0, 5))
        tau = numpyro.sample("tau", dist.HalfCauchy(5))
        theta_ = numpyro.sample("theta", dist.Normal(mu, tau).expand([y.shape[0]]).to_event(1))
        numpyro.sample("y", dist.Normal(theta_, sigma), obs=y)

    return fn


def _exp_quad(x, alpha, rho):
    return alpha**2 * jnp.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * rho**2))


def _gp_pois_regr(model):
    x, k = _a(model.x), _a(model.k)

    def fn():
        rho = numpyro.sample("rho", dist.Gamma(25, 4))
        alpha = numpyro.sample("alpha", dist.HalfNormal(2))
        f_tilde = numpyro.sample("f_tilde", dist.Normal(0, 1).expand([x.shape[0]]).to_event(1))
        L = jnp.linalg.cholesky(_exp_quad(x, alpha, rho) + 1e-10 * jnp.eye(x.shape[0]))
        numpyro.sample("k", dist.Poisson(jnp.exp(L @ f_tilde)), obs=k)

    return fn


def _forward(log_trans, log_emit):
    """log sum over hidden paths (initial weights 1, as in the Stan programs)."""

    def step(gamma, e):
        g = jax.nn.logsumexp(gamma[:, None] + log_trans, axis=0) + e
        return g, None

    gamma, _ = jax.lax.scan(step, log_emit[0], log_emit[1:])
    return jax.nn.logsumexp(gamma)


def _hmm_example(model):
    y = _a(model.y)

    def fn():
        theta1 = numpyro.sample("theta1", dist.Dirichlet(jnp.ones(2)))
        theta2 = numpyro.sample("theta2", dist.Dirichlet(jnp.ones(2)))
        mu = numpyro.sample("mu", dist.ImproperUniform(dist.constraints.positive_ordered_vector, (), (2,)))
        numpyro.factor("mu_prior", dist.Normal(3, 1).log_prob(mu[0]) + dist.Normal(10, 1).log_prob(mu[1]))
        log_trans = jnp.log(jnp.stack([theta1, theta2]))
        log_emit = dist.Normal(mu, 1.0).log_prob(y[:, None])
        numpyro.factor("y", _forward(log_trans, log_emit))

    return fn


def _hmm_drive(model):
    u, v, alpha = _a(model.u), _a(model.v), _a(model.alpha)

    def fn():
        theta1 = numpyro.sample("theta1", dist.Dirichlet(alpha[0]))
        theta2 = numpyro.sample("theta2", dist.Dirichlet(alpha[1]))
        phi = numpyro.sample("phi", dist.ImproperUniform(dist.constraints.positive_ordered_vector, (), (2,)))
        lam = numpyro.sample("lambda_", dist.ImproperUniform(dist.constraints.positive_ordered_vector, (), (2,)))
        prior = dist.Normal(0, 1).log_prob(phi[0]) + dist.Normal(3, 1).log_prob(phi[1])
        numpyro.factor("prior", prior + dist.Normal(0, 1).log_prob(lam[0]) + dist.Normal(3, 1).log_prob(lam[1]))
        log_trans = jnp.log(jnp.stack([theta1, theta2]))
        log_emit = jnp.log(phi) - phi * u[:, None] + jnp.log(lam) - lam * v[:, None]
        numpyro.factor("y", _forward(log_trans, log_emit))

    return fn


_BY_MODEL = {
    "blr": _linear,
    "kidscore_interaction": _linear,
    "kidscore_interaction_z": _linear,
    "logearn_interaction": _linear,
    "nes": _linear,
    "diamonds": _diamonds,
    "eight_schools_centered": _eight_schools_centered,
    "gp_pois_regr": _gp_pois_regr,
    "hmm_example": _hmm_example,
    "hmm_drive_0": _hmm_drive,
}


def numpyro_model(post, model):
    """A no-argument NumPyro model for posteriordb posterior ``post`` (varinf's ``model`` supplies the data).

    Raises ``KeyError`` when the posterior has no port."""
    if post.name in _BY_POSTERIOR:
        fn = _BY_POSTERIOR[post.name]
        return lambda: fn(post.data)
    if post.model_name not in _BY_MODEL:
        raise KeyError(f"no NumPyro port of {post.name!r} (posteriordb model {post.model_name!r})")
    return _BY_MODEL[post.model_name](model)


def ported(post) -> bool:
    """Whether :func:`numpyro_model` has a port of ``post`` (a posteriordb ``Posterior``)."""
    return post.name in _BY_POSTERIOR or post.model_name in _BY_MODEL
