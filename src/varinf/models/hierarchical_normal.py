r"""A hierarchical normal model with known variances: an exact Gaussian posterior at any size.

One level (``regions=0``): :math:`\mu \sim N(0, s^2)`, :math:`\theta_g \sim N(\mu, \tau^2)`,
:math:`\bar y_g \sim N(\theta_g, \sigma^2 / n_g)` (the group means of :math:`n_g` observations).
Two levels: :math:`\mu \sim N(0, s^2)`, :math:`\eta_r \sim N(\mu, \omega^2)` per region,
:math:`\theta_{rg} \sim N(\eta_r, \tau^2)` per group of region r, data as above.

The posterior is Gaussian with an arrow/tree-shaped precision. Its marginals come exactly from one upward pass
(each node's data marginalized: :math:`\bar y_g \mid \eta \sim N(\eta, \tau^2 + \sigma^2/n_g)`) and one downward
pass (each node given its parent is a linear-Gaussian conditional, so
:math:`E[x] = a + b\,E[\mathrm{parent}]`, :math:`\mathrm{Var}[x] = v + b^2\,\mathrm{Var}[\mathrm{parent}]`):
:meth:`HierarchicalNormal.exact_marginals`, O(D).

Written as a batched log joint (no data plate): latents ``mu`` ``()``, ``eta`` ``(R,)`` (two levels) and
``theta`` ``(R·G,)`` (or ``(G,)``); :math:`D = 1 + R + R G` (one level: :math:`1 + G`). Used to measure how
fits scale with D (``benchmarks/high_dim.py``) and in tests of the low-rank methods and streamed diagnostics.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .latent import Latent
from .model import Model

__all__ = ["HierarchicalNormal"]

_LOG_2PI = math.log(2 * math.pi)


def _lp(x: Tensor, loc, var) -> Tensor:
    return -0.5 * (x - loc).square() / var - 0.5 * (torch.log(torch.as_tensor(var, dtype=x.dtype)) + _LOG_2PI)


class HierarchicalNormal(Model):
    """See the module docstring. ``ybar`` ``(R·G,)`` group means, ``n`` ``(R·G,)`` group sizes."""

    def __init__(self, ybar: Tensor, n: Tensor, regions: int = 0, sigma: float = 1.0, tau: float = 1.0,
                 omega: float = 1.0, prior_scale: float = 5.0):  # fmt: skip
        ybar = torch.as_tensor(ybar, dtype=torch.get_default_dtype()).flatten()
        n = torch.as_tensor(n, dtype=ybar.dtype).flatten()
        if ybar.shape != n.shape or (n <= 0).any():
            raise ValueError("ybar and n must have the same length, and every n must be positive")
        if regions and ybar.numel() % regions:
            raise ValueError(f"{ybar.numel()} groups do not split into {regions} regions evenly")
        latents = [Latent("mu")] + ([Latent("eta", (regions,))] if regions else []) + [Latent("theta", ybar.shape)]
        super().__init__(latents, name=f"hierarchical_normal_{'two' if regions else 'one'}_level")
        self.regions = int(regions)
        self.sigma, self.tau, self.omega, self.prior_scale = map(float, (sigma, tau, omega, prior_scale))
        self.register_buffer("ybar", ybar)
        self.register_buffer("noise_var", sigma**2 / n)

    @classmethod
    def synthetic(cls, dim: int, levels: int = 1, seed: int = 0, **kw) -> HierarchicalNormal:
        """Data simulated from the model, group sizes 1..20, with ``dim`` (about, for two levels) latents:
        one level G = dim - 1; two levels R = round(sqrt(dim)) regions of G = (dim - 1) // R - 1 groups."""
        g = torch.Generator().manual_seed(seed)
        if levels == 1:
            R, G = 0, dim - 1
        elif levels == 2:
            R = max(1, round(math.sqrt(dim)))
            G = max(1, (dim - 1) // R - 1)
        else:
            raise ValueError(f"levels must be 1 or 2, got {levels}")
        tau, omega, sigma = kw.get("tau", 1.0), kw.get("omega", 1.0), kw.get("sigma", 1.0)
        mu = 2.0 * torch.randn((), generator=g)
        parent = mu + omega * torch.randn(R, generator=g) if R else mu.reshape(1)
        theta = parent.repeat_interleave(G if R else dim - 1) + tau * torch.randn(max(R, 1) * G, generator=g)
        n = torch.randint(1, 21, theta.shape, generator=g).to(theta.dtype)
        ybar = theta + sigma / n.sqrt() * torch.randn(theta.shape, generator=g)
        return cls(ybar, n, regions=R, **kw)

    def log_joint(self, mu: Tensor, theta: Tensor, eta: Tensor | None = None) -> Tensor:
        lp = _lp(mu, 0.0, self.prior_scale**2)
        if self.regions:
            lp = lp + _lp(eta, mu[..., None], self.omega**2).sum(-1)
            parent = eta.repeat_interleave(theta.shape[-1] // self.regions, dim=-1)
        else:
            parent = mu[..., None]
        lp = lp + _lp(theta, parent, self.tau**2).sum(-1)
        return lp + _lp(self.ybar, theta, self.noise_var).sum(-1)

    @torch.no_grad()
    def exact_marginals(self) -> dict[str, tuple[Tensor, Tensor]]:
        """``{latent: (mean, sd)}`` of the exact posterior (float64)."""
        y, s2 = self.ybar.double(), self.noise_var.double()
        t2, w2 = self.tau**2, self.omega**2
        # upward: each group's data as a "measurement" of its parent: ybar ~ N(parent, tau^2 + s2)
        m_var = t2 + s2
        if self.regions:
            R = self.regions
            a = (1 / m_var).reshape(R, -1).sum(1)  # eta_r's likelihood precision
            b = (y / m_var).reshape(R, -1).sum(1)
            up_var, up_mean = w2 + 1 / a, b / a  # (b/a) ~ N(mu, omega^2 + 1/a)
        else:
            up_var, up_mean = m_var, y
        prec_mu = 1 / self.prior_scale**2 + (1 / up_var).sum()
        var_mu = 1 / prec_mu
        mean_mu = var_mu * (up_mean / up_var).sum()
        out = {"mu": (mean_mu, var_mu.sqrt())}
        p_mean, p_var = mean_mu, var_mu
        if self.regions:  # eta_r | mu, data: precision a + 1/omega^2
            p = a + 1 / w2
            slope = (1 / w2) / p
            e_mean = b / p + slope * mean_mu
            e_var = 1 / p + slope.square() * var_mu
            out["eta"] = (e_mean, e_var.sqrt())
            p_mean = e_mean.repeat_interleave(y.numel() // R)
            p_var = e_var.repeat_interleave(y.numel() // R)
        r = 1 / s2 + 1 / t2  # theta | parent, data
        slope = (1 / t2) / r
        t_mean = (y / s2) / r + slope * p_mean
        t_var = 1 / r + slope.square() * p_var
        out["theta"] = (t_mean, t_var.sqrt())
        return out
