r"""Built-in example models (all ``Model`` subclasses, data stored as buffers).

- :class:`NormalNormal` — conjugate: :math:`\mu \sim N(m_0, s_0^2)`, :math:`y_i \sim N(\mu, \sigma^2)`;
  exact posterior and exact :math:`\log p(y)`.
- :class:`LinearRegression` — Bayesian linear regression with known noise; exact Gaussian posterior
  (correlated) and exact evidence.
- :class:`LogisticRegression` — :math:`\beta \sim N(0, s^2 I)`, :math:`y_n \sim \mathrm{Bern}(\sigma(x_n^\top\beta + \alpha))`.
- :class:`EightSchools` — Rubin (1981), non-centered: :math:`\theta_j = \mu + \tau\tilde\theta_j`.

``load_example(name)`` builds one on its default (synthetic, fixed-seed or classic) data.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Cauchy, MultivariateNormal, Normal

from .latent import Latent
from .model import Model

__all__ = ["EXAMPLES", "EightSchools", "LinearRegression", "LogisticRegression", "NormalNormal", "load_example"]

_LOG_2PI = math.log(2 * math.pi)


def _normal_lp(x: Tensor, loc, scale) -> Tensor:
    """Elementwise Normal log density without argument validation (hot path: few ops)."""
    if isinstance(scale, Tensor):
        return -0.5 * ((x - loc) / scale) ** 2 - scale.log() - 0.5 * _LOG_2PI
    return ((x - loc) ** 2).mul(-0.5 / scale**2) - (math.log(scale) + 0.5 * _LOG_2PI)


class NormalNormal(Model):
    r"""Unknown mean, known noise: :math:`\mu\sim N(m_0,s_0^2)`, :math:`y_i\sim N(\mu,\sigma^2)`.

    Exact posterior :math:`N(m_n, s_n^2)` with :math:`s_n^{-2} = s_0^{-2} + n\sigma^{-2}`,
    :math:`m_n = s_n^2 (m_0 s_0^{-2} + \sum y_i \sigma^{-2})`.
    """

    def __init__(self, y: Tensor, sigma: float = 1.0, prior_loc: float = 0.0, prior_scale: float = 10.0):
        super().__init__([Latent("mu")], name="normal_normal")
        self.register_buffer("y", torch.as_tensor(y, dtype=torch.get_default_dtype()).flatten())
        self.sigma, self.prior_loc, self.prior_scale = float(sigma), float(prior_loc), float(prior_scale)

    def log_joint(self, mu: Tensor) -> Tensor:
        prior = _normal_lp(mu, self.prior_loc, self.prior_scale)
        return prior + _normal_lp(self.y, mu[..., None], self.sigma).sum(-1)

    def exact_posterior(self) -> Normal:
        n = self.y.numel()
        prec = 1 / self.prior_scale**2 + n / self.sigma**2
        mean = (self.prior_loc / self.prior_scale**2 + self.y.sum() / self.sigma**2) / prec
        return Normal(mean, prec**-0.5)

    def exact_log_evidence(self) -> float:
        n = self.y.numel()
        y = self.y.double()
        cov = self.sigma**2 * torch.eye(n, dtype=y.dtype) + self.prior_scale**2
        return MultivariateNormal(torch.full_like(y, self.prior_loc), cov).log_prob(y).item()


class LinearRegression(Model):
    r""":math:`\beta\sim N(0, s^2 I_d)`, :math:`y = X\beta + \epsilon`, :math:`\epsilon\sim N(0,\sigma^2 I)`,
    :math:`\sigma` known. Posterior :math:`N(m, \Sigma)`, :math:`\Sigma^{-1} = X^\top X/\sigma^2 + I/s^2`,
    :math:`m = \Sigma X^\top y/\sigma^2`.
    """

    def __init__(self, X: Tensor, y: Tensor, noise_scale: float = 1.0, prior_scale: float = 1.0):
        X = torch.as_tensor(X, dtype=torch.get_default_dtype())
        y = torch.as_tensor(y, dtype=X.dtype)
        if X.dim() != 2 or y.shape != X.shape[:1]:
            raise ValueError(f"X must be (N, d) and y (N,); got X {tuple(X.shape)} and y {tuple(y.shape)}")
        super().__init__([Latent("beta", (X.shape[1],))], name="linear_regression")
        self.register_buffer("X", X)
        self.register_buffer("y", y)
        self.noise_scale, self.prior_scale = float(noise_scale), float(prior_scale)

    @classmethod
    def synthetic(cls, n: int = 100, d: int = 3, seed: int = 0, correlated: bool = True, **kw) -> LinearRegression:
        g = torch.Generator().manual_seed(seed)
        X = torch.randn(n, d, generator=g)
        if correlated:  # shared factor -> correlated posterior
            X = X + 0.8 * torch.randn(n, 1, generator=g)
        beta = torch.randn(d, generator=g)
        y = X @ beta + kw.get("noise_scale", 1.0) * torch.randn(n, generator=g)
        return cls(X, y, **kw)

    def log_joint(self, beta: Tensor) -> Tensor:
        prior = _normal_lp(beta, 0.0, self.prior_scale).sum(-1)
        mean = beta @ self.X.T  # (*S, N)
        return prior + _normal_lp(self.y, mean, self.noise_scale).sum(-1)

    def exact_posterior(self) -> MultivariateNormal:
        X, y = self.X.double(), self.y.double()
        prec = X.T @ X / self.noise_scale**2 + torch.eye(X.shape[1], dtype=X.dtype) / self.prior_scale**2
        cov = torch.linalg.inv(prec)
        return MultivariateNormal(cov @ X.T @ y / self.noise_scale**2, covariance_matrix=cov)

    def exact_log_evidence(self) -> float:
        X, y = self.X.double(), self.y.double()
        cov = self.prior_scale**2 * X @ X.T + self.noise_scale**2 * torch.eye(X.shape[0], dtype=X.dtype)
        return MultivariateNormal(torch.zeros_like(y), cov).log_prob(y).item()


class LogisticRegression(Model):
    r""":math:`\beta\sim N(0,s^2 I_d)`, :math:`\alpha\sim N(0,s^2)`,
    :math:`y_n\sim\mathrm{Bernoulli}(\mathrm{logit}^{-1}(x_n^\top\beta+\alpha))`."""

    def __init__(self, X: Tensor, y: Tensor, prior_scale: float = 1.0, intercept: bool = True):
        X = torch.as_tensor(X, dtype=torch.get_default_dtype())
        y = torch.as_tensor(y, dtype=X.dtype)
        if X.dim() != 2 or y.shape != X.shape[:1]:
            raise ValueError(f"X must be (N, d) and y (N,); got X {tuple(X.shape)} and y {tuple(y.shape)}")
        if not bool(((y == 0) | (y == 1)).all()):
            raise ValueError("y must contain only 0 and 1")
        latents = [Latent("beta", (X.shape[1],))] + ([Latent("alpha")] if intercept else [])
        super().__init__(latents, name="logistic_regression")
        self.register_buffer("X", X)
        self.register_buffer("y", y)
        self.register_buffer("flip", 1 - 2 * y)  # log Bern(y | sigmoid(l)) = -softplus(flip * l)
        self.prior_scale = float(prior_scale)
        self.intercept = intercept
        # for log_density on the flat u = (beta, alpha): the design with a column of ones, transposed once, and
        # the prior's constants as 0-dim buffers (Python floats in an op cost extra tensor conversions each step)
        design = torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype)], 1) if intercept else X
        self.register_buffer("design_t", design.T.contiguous(), persistent=False)
        d = design.shape[1]
        const = -d * (math.log(self.prior_scale) + 0.5 * _LOG_2PI)
        self.register_buffer("prior_coef", torch.tensor(-0.5 / self.prior_scale**2, dtype=X.dtype), persistent=False)
        self.register_buffer("prior_const", torch.tensor(const, dtype=X.dtype), persistent=False)

    @classmethod
    def synthetic(cls, n: int = 10_000, d: int = 20, seed: int = 0, **kw) -> LogisticRegression:
        g = torch.Generator().manual_seed(seed)
        X = torch.randn(n, d, generator=g)
        beta = torch.randn(d, generator=g) * 0.5
        logits = X @ beta + 0.3
        y = (torch.rand(n, generator=g) < torch.sigmoid(logits)).to(X.dtype)
        return cls(X, y, **kw)

    def log_joint(self, beta: Tensor, alpha: Tensor | None = None) -> Tensor:
        # Written for few ops per call (it is the whole cost of a posterior-VI step): constants folded
        # into one Python float, log Bernoulli(y | sigmoid(l)) = -softplus((1 - 2y) l).
        s2 = self.prior_scale**2
        sq = beta.square().sum(-1)
        logits = beta @ self.X.T  # (*S, N)
        if alpha is not None:
            sq = sq + alpha.square()
            logits = logits + alpha[..., None]
        d = beta.shape[-1] + (alpha is not None)
        const = -d * (math.log(self.prior_scale) + 0.5 * _LOG_2PI)
        return sq.mul(-0.5 / s2) - F.softplus(logits * self.flip).sum(-1) + const

    def log_density(self, u: Tensor) -> Tensor:
        """:meth:`log_joint` on the flat unconstrained ``u`` ``(*S, d [+1])`` (every latent is real): one matrix
        product against the design with its column of ones, about half the tensor ops of the generic path."""
        if u.shape[-1] != self.dim:
            return super().log_density(u)  # (raises the usual shape error)
        prior = torch.addcmul(self.prior_const, (u * u).sum(-1), self.prior_coef)
        return prior - F.softplus((u @ self.design_t) * self.flip).sum(-1)


class EightSchools(Model):
    r"""Eight schools, non-centered (Rubin 1981; Gelman et al. BDA3 §5.5):
    :math:`\mu\sim N(0,5^2)`, :math:`\tau\sim\mathrm{HalfCauchy}(5)`, :math:`\tilde\theta_j\sim N(0,1)`,
    :math:`y_j\sim N(\mu+\tau\tilde\theta_j, \sigma_j^2)`."""

    Y = (28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0)
    SIGMA = (15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0)

    def __init__(self, y=Y, sigma=SIGMA):
        y = torch.as_tensor(y, dtype=torch.get_default_dtype())
        super().__init__(
            [Latent("mu"), Latent("tau", (), "positive"), Latent("theta_tilde", (y.numel(),))],
            name="eight_schools",
        )
        self.register_buffer("y", y)
        self.register_buffer("sigma", torch.as_tensor(sigma, dtype=y.dtype))

    def log_joint(self, mu: Tensor, tau: Tensor, theta_tilde: Tensor) -> Tensor:
        lp = _normal_lp(mu, 0.0, 5.0)
        lp = lp + Cauchy(0.0, 5.0).log_prob(tau) + math.log(2.0)  # half-Cauchy
        lp = lp + _normal_lp(theta_tilde, 0.0, 1.0).sum(-1)
        theta = mu[..., None] + tau[..., None] * theta_tilde
        return lp + _normal_lp(self.y, theta, self.sigma).sum(-1)

    def theta(self, mu: Tensor, tau: Tensor, theta_tilde: Tensor) -> Tensor:
        return mu[..., None] + tau[..., None] * theta_tilde


def _normal_normal():
    g = torch.Generator().manual_seed(0)
    return NormalNormal(1.5 + torch.randn(20, generator=g), sigma=1.0, prior_loc=0.0, prior_scale=10.0)


EXAMPLES = {
    "normal_normal": _normal_normal,
    "linear_regression": lambda: LinearRegression.synthetic(),
    "logistic_regression": lambda: LogisticRegression.synthetic(n=1000, d=5),
    "eight_schools": lambda: EightSchools(),
}


def load_example(name: str) -> Model:
    """Build a built-in example on its default data. ``name`` is one of :data:`EXAMPLES`."""
    try:
        return EXAMPLES[name]()
    except KeyError:
        raise KeyError(f"unknown example {name!r}; choose from {sorted(EXAMPLES)}") from None
