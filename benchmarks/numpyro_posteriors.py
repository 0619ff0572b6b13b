"""NumPyro versions of all 16 posteriordb posteriors with reference draws, for side-by-side benchmarks.

``numpyro_model(post, model)`` returns a no-argument NumPyro model whose sample sites carry varinf's latent names
(so ``model.reference_quantities`` maps their constrained draws to the reference quantities). Five come from
``numpyro_svi.py``; the others are written here from the Stan programs, reading the data varinf's model already
prepared (design matrices as the Stan ``transformed data`` blocks build them). Never imported by the package.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from numpyro_svi import FLAT_POS, MODELS

__all__ = ["numpyro_model"]


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
    """A no-argument NumPyro model for posteriordb posterior ``post`` (varinf's ``model`` supplies the data)."""
    if post.name in MODELS:
        fn = MODELS[post.name]
        return lambda: fn(post.data)
    return _BY_MODEL[post.model_name](model)
