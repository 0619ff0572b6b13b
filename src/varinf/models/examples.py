r"""Built-in example models (all ``Model`` subclasses, data stored as buffers).

- :class:`NormalNormal` — conjugate: :math:`\mu \sim N(m_0, s_0^2)`, :math:`y_i \sim N(\mu, \sigma^2)`;
  exact posterior and exact :math:`\log p(y)`.
- :class:`LinearRegression` — Bayesian linear regression with known noise; exact Gaussian posterior
  (correlated) and exact evidence; :meth:`LinearRegression.correlated` draws predictors with a chosen
  pairwise correlation.
- :class:`NormalGamma` — unknown mean and precision, conjugate Normal–Gamma prior; exact :math:`\log p(y)` and a
  posterior that is *not* Gaussian in the unconstrained :math:`(\mu, \log\tau)` (skewed, scale-dependent).
- :class:`GPRegression` — Gaussian-process regression with fixed hyperparameters, latent function values
  whitened (:math:`f = L\eta`, Stan's recommended form); exact posterior and exact :math:`\log p(y)`.
- :class:`LogisticRegression` — :math:`\beta \sim N(0, s^2 I)`, :math:`y_n \sim \mathrm{Bern}(\sigma(x_n^\top\beta + \alpha))`.
- :class:`EightSchools` — Rubin (1981), non-centered: :math:`\theta_j = \mu + \tau\tilde\theta_j` (a derived quantity).

The regressions are plate models (data rows, ``log_prior`` + ``log_likelihood``), so they fit on minibatches
and simulate replicated data; eight schools has one latent per school and stays in the log-joint form.

``load_example(name)`` builds one on its default (synthetic, fixed-seed or classic) data.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Cauchy, MultivariateNormal, Normal

from .chunking import rows_per_chunk
from .latent import Latent
from .model import Model

__all__ = [
    "EXAMPLES",
    "EightSchools",
    "GPRegression",
    "LinearRegression",
    "LogisticRegression",
    "NormalGamma",
    "NormalNormal",
    "load_example",
]

_LOG_2PI = math.log(2 * math.pi)


def _normal_lp(x: Tensor, loc, scale) -> Tensor:
    """Elementwise Normal log density without argument validation (hot path: few ops)."""
    if isinstance(scale, Tensor):
        return -0.5 * ((x - loc) / scale) ** 2 - scale.log() - 0.5 * _LOG_2PI
    return ((x - loc) ** 2).mul(-0.5 / scale**2) - (math.log(scale) + 0.5 * _LOG_2PI)


class NormalNormal(Model):
    r"""Unknown mean, known noise: :math:`\mu\sim N(m_0,s_0^2)`, :math:`y_i\sim N(\mu,\sigma^2)`.

    Exact posterior :math:`N(m_n, s_n^2)` with :math:`s_n^{-2} = s_0^{-2} + n\sigma^{-2}`,
    :math:`m_n = s_n^2 (m_0 s_0^{-2} + \sum y_i \sigma^{-2})`. Data: ``{"y": (n,)}``.
    """

    def __init__(self, y: Tensor, sigma: float = 1.0, prior_loc: float = 0.0, prior_scale: float = 10.0):
        y = torch.as_tensor(y, dtype=torch.get_default_dtype()).flatten()
        super().__init__([Latent("mu")], data={"y": y}, simulate=self._simulate, name="normal_normal")
        self.sigma, self.prior_loc, self.prior_scale = float(sigma), float(prior_loc), float(prior_scale)

    def log_prior(self, mu: Tensor) -> Tensor:
        return _normal_lp(mu, self.prior_loc, self.prior_scale)

    def log_likelihood(self, data, mu: Tensor) -> Tensor:  # (*S,) -> (*S, B)
        return _normal_lp(data["y"], mu.unsqueeze(-1), self.sigma)

    def _simulate(self, mu: Tensor, data) -> dict[str, Tensor]:
        shape = (*mu.shape, data["y"].shape[0])
        return {"y": mu.unsqueeze(-1) + self.sigma * torch.randn(shape, dtype=mu.dtype, device=mu.device)}

    def exact_posterior(self) -> Normal:
        y = self.data["y"]
        n = y.numel()
        prec = 1 / self.prior_scale**2 + n / self.sigma**2
        mean = (self.prior_loc / self.prior_scale**2 + y.sum() / self.sigma**2) / prec
        return Normal(mean, prec**-0.5)

    def exact_log_evidence(self) -> float:
        y = self.data["y"].double()
        n = y.numel()
        cov = self.sigma**2 * torch.eye(n, dtype=y.dtype) + self.prior_scale**2
        return MultivariateNormal(torch.full_like(y, self.prior_loc), cov).log_prob(y).item()


def _design(X: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    X = torch.as_tensor(X, dtype=torch.get_default_dtype())
    y = torch.as_tensor(y, dtype=X.dtype)
    if X.dim() != 2 or y.shape != X.shape[:1]:
        raise ValueError(f"X must be (N, d) and y (N,); got X {tuple(X.shape)} and y {tuple(y.shape)}")
    return X, y


class LinearRegression(Model):
    r""":math:`\beta\sim N(0, s^2 I_d)`, :math:`y = X\beta + \epsilon`, :math:`\epsilon\sim N(0,\sigma^2 I)`,
    :math:`\sigma` known. Posterior :math:`N(m, \Sigma)`, :math:`\Sigma^{-1} = X^\top X/\sigma^2 + I/s^2`,
    :math:`m = \Sigma X^\top y/\sigma^2`. Data: ``{"X": (N, d), "y": (N,)}``.
    """

    def __init__(self, X: Tensor, y: Tensor, noise_scale: float = 1.0, prior_scale: float = 1.0):
        X, y = _design(X, y)
        super().__init__([Latent("beta", (X.shape[1],))], data={"X": X, "y": y}, simulate=self._simulate,
                         name="linear_regression")  # fmt: skip
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

    @classmethod
    def correlated(cls, n: int = 50, d: int = 4, rho: float = 0.9, seed: int = 0, **kw) -> LinearRegression:
        r"""Predictors with pairwise correlation ``rho`` (one shared factor: :math:`x_{nj} = \sqrt{1-\rho}\,
        e_{nj} + \sqrt\rho\, c_n`), coefficients :math:`\beta\sim N(0, I)`. The posterior correlations grow
        with ``rho``: at 0.99 a mean-field q underestimates some posterior sds about tenfold."""
        if not 0 <= rho < 1:
            raise ValueError(f"rho must be in [0, 1), got {rho}")
        g = torch.Generator().manual_seed(seed)
        X = math.sqrt(1 - rho) * torch.randn(n, d, generator=g) + math.sqrt(rho) * torch.randn(n, 1, generator=g)
        beta = torch.randn(d, generator=g)
        y = X @ beta + kw.get("noise_scale", 1.0) * torch.randn(n, generator=g)
        return cls(X, y, **kw)

    def log_prior(self, beta: Tensor) -> Tensor:
        return _normal_lp(beta, 0.0, self.prior_scale).sum(-1)

    def log_likelihood(self, data, beta: Tensor) -> Tensor:
        return _normal_lp(data["y"], beta @ data["X"].T, self.noise_scale)  # (*S, B)

    def _simulate(self, beta: Tensor, data) -> dict[str, Tensor]:
        mean = beta @ data["X"].T
        return {"y": mean + self.noise_scale * torch.randn_like(mean)}

    def exact_posterior(self) -> MultivariateNormal:
        X, y = self.data["X"].double(), self.data["y"].double()
        prec = X.T @ X / self.noise_scale**2 + torch.eye(X.shape[1], dtype=X.dtype) / self.prior_scale**2
        cov = torch.linalg.inv(prec)
        return MultivariateNormal(cov @ X.T @ y / self.noise_scale**2, covariance_matrix=cov)

    def exact_log_evidence(self) -> float:
        r""":math:`\log N(y; 0, \sigma^2 I + s^2 XX^\top)` through the ``d × d`` posterior precision
        :math:`\Lambda = X^\top X/\sigma^2 + I/s^2` (matrix determinant lemma and Woodbury): ``O(N d^2)``, no
        ``N × N`` matrix, so it holds at any number of rows."""
        X, y = self.data["X"].double(), self.data["y"].double()
        (n, d), var = X.shape, self.noise_scale**2
        prec = X.T @ X / var + torch.eye(d, dtype=X.dtype) / self.prior_scale**2
        L = torch.linalg.cholesky(prec)
        w = torch.linalg.solve_triangular(L, (X.T @ y / var)[:, None], upper=False)  # L^{-1} b
        quad = y @ y / var - w.square().sum()
        logdet = 2 * L.diagonal().log().sum() + 2 * d * math.log(self.prior_scale) + n * math.log(var)
        return (-0.5 * (n * math.log(2 * math.pi) + logdet + quad)).item()


class LogisticRegression(Model):
    r""":math:`\beta\sim N(0,s^2 I_d)`, :math:`\alpha\sim N(0,s^2)`,
    :math:`y_n\sim\mathrm{Bernoulli}(\mathrm{logit}^{-1}(x_n^\top\beta+\alpha))`.

    Data: ``{"X": (N, d), "y": (N,)}``. The likelihood is written for few ops per step:
    :math:`\log \mathrm{Bern}(y \mid \sigma(l)) = -\mathrm{softplus}((1 - 2y)\, l)`.
    """

    def __init__(self, X: Tensor, y: Tensor, prior_scale: float = 1.0, intercept: bool = True, **model_kw):
        X, y = _design(X, y)
        if not bool(((y == 0) | (y == 1)).all()):
            raise ValueError("y must contain only 0 and 1")
        latents = [Latent("beta", (X.shape[1],))] + ([Latent("alpha")] if intercept else [])
        super().__init__(
            latents, data={"X": X, "y": y}, simulate=self._simulate, name="logistic_regression", **model_kw
        )
        self.prior_scale = float(prior_scale)
        self.intercept = intercept
        # for log_density on the flat u = (beta, alpha): the design with a column of ones, each row times
        # 1 - 2y (log Bern(y | sigmoid(l)) = -softplus((1 - 2y) l)), transposed once; the prior's constants as
        # 0-dim buffers (Python floats in an op cost extra tensor conversions each step)
        design = torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype)], 1) if intercept else X
        self._rows = X.shape[0]
        self.register_buffer("signed_design_t", (design * (1 - 2 * y).unsqueeze(-1)).T.contiguous(), persistent=False)
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

    def log_prior(self, beta: Tensor, alpha: Tensor | None = None) -> Tensor:
        # constants folded into one Python float (this runs every step)
        sq = beta.square().sum(-1)
        if alpha is not None:
            sq = sq + alpha.square()
        d = beta.shape[-1] + (alpha is not None)
        return sq.mul(-0.5 / self.prior_scale**2) - d * (math.log(self.prior_scale) + 0.5 * _LOG_2PI)

    def logits(self, data, beta: Tensor, alpha: Tensor | None = None) -> Tensor:
        r""":math:`x_n^\top\beta + \alpha`, ``(*S, B)``."""
        logits = beta @ data["X"].T
        return logits if alpha is None else logits + alpha.unsqueeze(-1)

    def log_likelihood(self, data, beta: Tensor, alpha: Tensor | None = None) -> Tensor:
        return -F.softplus(self.logits(data, beta, alpha) * (1 - 2 * data["y"]))

    def _simulate(self, beta: Tensor, data, alpha: Tensor | None = None) -> dict[str, Tensor]:
        return {"y": torch.bernoulli(torch.sigmoid(self.logits(data, beta, alpha)))}

    def _flat(self, u: Tensor, grad: bool) -> bool:
        """Whether the one-matrix-product form below applies to ``u`` (else the generic, chunked path)."""
        draws = math.prod(u.shape[:-1])
        return u.shape[-1] == self.dim and not self.distributed and (
            rows_per_chunk(draws, u.element_size(), self.max_memory, grad) >= self._rows)  # fmt: skip

    def log_density(self, u: Tensor) -> Tensor:
        """:meth:`log_joint` on the flat unconstrained ``u`` ``(*S, d [+1])`` (every latent is real): one matrix
        product against the signed design with its column of ones, about half the tensor ops of the generic
        path. The generic path (chunked over rows, summed over processes) where that matters: a distributed
        model, or more draws x rows than one chunk of ``max_memory`` holds."""
        if not self._flat(u, torch.is_grad_enabled() and u.requires_grad):
            return super().log_density(u)  # (also raises the usual shape error)
        prior = torch.addcmul(self.prior_const, (u * u).sum(-1), self.prior_coef)
        return prior - F.softplus(u @ self.signed_design_t).sum(-1)

    def log_density_and_score(self, u: Tensor) -> tuple[Tensor, Tensor] | None:
        r"""``(log_density(u), its gradient in u)`` in closed form, no autograd:
        :math:`\nabla_u = -u/s^2 - \sum_n \sigma(t_n)\, \tilde x_n` with :math:`t = \tilde X u` on the signed
        design :math:`\tilde x_n = (1 - 2y_n)(x_n, 1)` (:math:`\mathrm{softplus}' = \sigma`). ``None`` where
        :meth:`log_density` would take the generic path, or a subclass redefines it."""
        if type(self).log_density is not LogisticRegression.log_density or not self._flat(u, True):
            return None
        xt = self.signed_design_t  # (a buffer: looked up once)
        t = u @ xt
        value = torch.addcmul(self.prior_const, (u * u).sum(-1), self.prior_coef) - F.softplus(t).sum(-1)
        s, beta = torch.sigmoid(t), -(self.prior_scale**-2)
        if u.dim() == 1:
            return value, torch.addmv(u, xt, s, beta=beta, alpha=-1)
        if u.dim() == 2:
            return value, torch.addmm(u, s, xt.T, beta=beta, alpha=-1)
        score = torch.addmm(u.reshape(-1, self.dim), s.reshape(-1, s.shape[-1]), xt.T, beta=beta, alpha=-1)
        return value, score.reshape(u.shape)


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
            derived=lambda mu, tau, theta_tilde: {"theta": self.theta(mu, tau, theta_tilde)},
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
        r"""The school effects :math:`\theta_j = \mu + \tau\tilde\theta_j` (recorded as a derived quantity)."""
        return mu[..., None] + tau[..., None] * theta_tilde


class NormalGamma(Model):
    r"""Unknown mean and precision: :math:`\tau\sim\mathrm{Gamma}(a_0, b_0)`,
    :math:`\mu\mid\tau\sim N(m_0, 1/(\kappa_0\tau))`, :math:`y_i\sim N(\mu, 1/\tau)`.

    Conjugate: :math:`\tau\mid y\sim\mathrm{Gamma}(a_n, b_n)`, :math:`\mu\mid\tau, y\sim N(m_n, 1/(\kappa_n\tau))` with
    :math:`\kappa_n = \kappa_0 + n`, :math:`m_n = (\kappa_0 m_0 + n\bar y)/\kappa_n`, :math:`a_n = a_0 + n/2`,
    :math:`b_n = b_0 + \frac12\sum_i (y_i - \bar y)^2 + \kappa_0 n(\bar y - m_0)^2 / (2\kappa_n)`, and
    :math:`p(y) = \frac{\Gamma(a_n)}{\Gamma(a_0)}\frac{b_0^{a_0}}{b_n^{a_n}}\sqrt{\kappa_0/\kappa_n}\,(2\pi)^{-n/2}`
    (Murphy 2007, "Conjugate Bayesian analysis of the Gaussian distribution", §3).
    """

    def __init__(self, y: Tensor, prior_loc: float = 0.0, prior_kappa: float = 1.0, a0: float = 2.0, b0: float = 2.0):
        super().__init__([Latent("mu"), Latent("tau", (), "positive")], name="normal_gamma")
        self.register_buffer("y", torch.as_tensor(y, dtype=torch.get_default_dtype()).flatten())
        self.m0, self.kappa0, self.a0, self.b0 = float(prior_loc), float(prior_kappa), float(a0), float(b0)

    @classmethod
    def synthetic(cls, n: int = 10, seed: int = 0, **kw) -> NormalGamma:
        """``n`` draws of N(1, 1.5^2) (few points: a skewed posterior)."""
        g = torch.Generator().manual_seed(seed)
        return cls(1.0 + 1.5 * torch.randn(n, generator=g), **kw)

    def log_joint(self, mu: Tensor, tau: Tensor) -> Tensor:
        a0, b0, k0 = self.a0, self.b0, self.kappa0
        lp = a0 * math.log(b0) - math.lgamma(a0) + (a0 - 1) * tau.log() - b0 * tau  # Gamma(a0, rate b0)
        lp = lp + 0.5 * (math.log(k0) + tau.log() - _LOG_2PI) - 0.5 * k0 * tau * (mu - self.m0) ** 2
        n = self.y.numel()
        sq = (self.y - mu[..., None]).square().sum(-1)
        return lp + 0.5 * n * (tau.log() - _LOG_2PI) - 0.5 * tau * sq

    def posterior_parameters(self) -> tuple[float, float, float, float]:
        r""":math:`(m_n, \kappa_n, a_n, b_n)`."""
        y = self.y.double()
        n, ybar = y.numel(), y.mean().item()
        kn = self.kappa0 + n
        mn = (self.kappa0 * self.m0 + n * ybar) / kn
        an = self.a0 + n / 2
        bn = self.b0 + 0.5 * (y - ybar).square().sum().item() + self.kappa0 * n * (ybar - self.m0) ** 2 / (2 * kn)
        return mn, kn, an, bn

    def exact_moments(self) -> dict[str, tuple[float, float]]:
        """Posterior mean and sd of ``mu`` (a Student t) and ``tau`` (a Gamma)."""
        mn, kn, an, bn = self.posterior_parameters()
        return {"mu": (mn, math.sqrt(bn / (kn * (an - 1)))), "tau": (an / bn, math.sqrt(an) / bn)}

    def exact_log_evidence(self) -> float:
        _, kn, an, bn = self.posterior_parameters()
        n = self.y.numel()
        return (
            math.lgamma(an) - math.lgamma(self.a0) + self.a0 * math.log(self.b0) - an * math.log(bn)
            + 0.5 * (math.log(self.kappa0) - math.log(kn)) - 0.5 * n * _LOG_2PI
        )  # fmt: skip


class GPRegression(Model):
    r"""Gaussian-process regression with fixed hyperparameters, latent values whitened (Stan's recommended form):
    :math:`\eta\sim N(0, I_n)`, :math:`f = L\eta` with :math:`LL^\top = K + \epsilon I`,
    :math:`K_{ij} = s^2\exp(-(x_i - x_j)^2 / 2\ell^2)`, :math:`y_i \sim N(f_i, \sigma^2)`.

    Exact posterior :math:`\eta\mid y \sim N(m, \Sigma)`, :math:`\Sigma^{-1} = I + L^\top L/\sigma^2`,
    :math:`m = \Sigma L^\top y/\sigma^2`; exact evidence :math:`\log N(y; 0, LL^\top + \sigma^2 I)`.
    Smooth kernels make the posterior strongly correlated (a hard case for mean-field q).
    """

    def __init__(self, x: Tensor, y: Tensor, lengthscale: float = 1.0, signal_scale: float = 1.0,
                 noise_scale: float = 0.3, jitter: float = 1e-6):  # fmt: skip
        x = torch.as_tensor(x, dtype=torch.get_default_dtype()).flatten()
        y = torch.as_tensor(y, dtype=x.dtype).flatten()
        if x.shape != y.shape:
            raise ValueError(f"x and y must have the same length; got {x.numel()} and {y.numel()}")
        super().__init__([Latent("eta", (x.numel(),))], name="gp_regression")
        d2 = (x[:, None] - x[None, :]).double().square()
        K = signal_scale**2 * torch.exp(-0.5 * d2 / lengthscale**2) + jitter * torch.eye(x.numel(), dtype=d2.dtype)
        self.register_buffer("x", x)
        self.register_buffer("y", y)
        self.register_buffer("L", torch.linalg.cholesky(K).to(x.dtype))
        self.noise_scale = float(noise_scale)

    @classmethod
    def synthetic(cls, n: int = 20, seed: int = 0, **kw) -> GPRegression:
        """``n`` inputs uniform on [0, 10], a smooth function plus noise of sd ``noise_scale`` (default 0.3)."""
        g = torch.Generator().manual_seed(seed)
        x = torch.sort(10 * torch.rand(n, generator=g)).values
        f = torch.sin(x) + 0.5 * torch.cos(2.3 * x + torch.rand(1, generator=g) * 6)
        y = f + kw.get("noise_scale", 0.3) * torch.randn(n, generator=g)
        return cls(x, y, **kw)

    def log_joint(self, eta: Tensor) -> Tensor:
        f = eta @ self.L.T  # (*S, n)
        return _normal_lp(eta, 0.0, 1.0).sum(-1) + _normal_lp(self.y, f, self.noise_scale).sum(-1)

    def exact_posterior(self) -> MultivariateNormal:
        L, y = self.L.double(), self.y.double()
        prec = torch.eye(L.shape[0], dtype=L.dtype) + L.T @ L / self.noise_scale**2
        cov = torch.linalg.inv(prec)
        return MultivariateNormal(cov @ L.T @ y / self.noise_scale**2, covariance_matrix=0.5 * (cov + cov.T))

    def exact_log_evidence(self) -> float:
        L, y = self.L.double(), self.y.double()
        cov = L @ L.T + self.noise_scale**2 * torch.eye(L.shape[0], dtype=L.dtype)
        return MultivariateNormal(torch.zeros_like(y), cov).log_prob(y).item()


def _normal_normal():
    g = torch.Generator().manual_seed(0)
    return NormalNormal(1.5 + torch.randn(20, generator=g), sigma=1.0, prior_loc=0.0, prior_scale=10.0)


EXAMPLES = {
    "normal_normal": _normal_normal,
    "linear_regression": lambda: LinearRegression.synthetic(),
    "logistic_regression": lambda: LogisticRegression.synthetic(n=1000, d=5),
    "eight_schools": lambda: EightSchools(),
    "gp_regression": lambda: GPRegression.synthetic(),
    "normal_gamma": lambda: NormalGamma.synthetic(),
}


def load_example(name: str) -> Model:
    """Build a built-in example on its default data. ``name`` is one of :data:`EXAMPLES`."""
    try:
        return EXAMPLES[name]()
    except KeyError:
        raise KeyError(f"unknown example {name!r}; choose from {sorted(EXAMPLES)}") from None
