r"""Variational bounds as small value types (Blackjax/Optax style): ``ELBO``, ``IWAE``, ``Renyi``.

Each has ``loss(q, log_p, prior=None) -> BoundEstimate``. ``log_p(z)`` maps draws
``(S, *batch, D)`` to ``(S, *batch)``: the log joint :math:`\log p(x, z)`, or, when ``prior`` (a
Distribution over z) is given, the log likelihood :math:`\log p(x\mid z)`, the prior entering
analytically (KL) where torch knows it. Sign convention: ``loss = -bound`` (batch mean), nats.

- ELBO: :math:`\mathcal{L} = E_q[\log p(x,z) - \log q(z)] = \log p(x) - KL(q\,\|\,p(z\mid x))`.
- IWAE (Burda et al. 2016, arXiv:1509.00519):
  :math:`\mathcal{L}_K = E\big[\log \tfrac1K\sum_k w_k\big]`, :math:`w_k = p(x,z_k)/q(z_k)`;
  :math:`\mathcal{L}_1 = \mathcal{L}`, nondecreasing in :math:`K`, :math:`\to \log p(x)`.
- Rényi-α (Li & Turner 2016, arXiv:1602.02311):
  :math:`\mathcal{L}_\alpha = \tfrac{1}{1-\alpha}\log E_q[w^{1-\alpha}]`, estimated with K draws;
  :math:`\alpha\to1` gives the ELBO, :math:`\alpha=0` the IWAE bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.distributions import Distribution, kl_divergence

from .baselines import EMABaseline, leave_one_out
from .draws import draw
from .estimate import BoundEstimate

__all__ = ["ELBO", "IWAE", "Renyi"]

LogDensity = Callable[[Tensor], Tensor]


def _entropy(q: Distribution) -> Tensor | None:
    try:
        return q.entropy()
    except NotImplementedError:
        return None


def _kl(q: Distribution, prior: Distribution) -> Tensor | None:
    try:
        return kl_divergence(q, prior)
    except NotImplementedError:
        return None


def _surrogate(value: Tensor, surrogate: Tensor) -> Tensor:
    """``value`` with the gradient of ``surrogate`` added (Pyro: loss + (s - s.detach()))."""
    return value + (surrogate - surrogate.detach())


def _check_particles(n) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"num_particles must be an integer >= 1, got {n!r}")


def _log_mean_exp(x: Tensor, dim: int = 0) -> Tensor:
    return torch.logsumexp(x, dim) - math.log(x.shape[dim])


@dataclass(frozen=True)
class ELBO:
    r"""Evidence lower bound with ``num_particles`` draws.

    Args:
        num_particles: Monte Carlo draws per step.
        gradient: ``"reparam"`` (default), ``"stl"`` (sticking the landing) or ``"score"``
            (REINFORCE with a baseline: leave-one-out over particles when ``num_particles >= 2``,
            else an exponential moving average of the learning signal).
        analytic: use the closed-form entropy of q (or KL to ``prior``) when torch has one.
            Ignored by ``stl``, whose whole point is the Monte Carlo :math:`\log q` term.
        beta: weight on the rate (:math:`\beta`-VAE, Higgins et al. 2017): loss = distortion + β·rate.
            Only meaningful with ``prior``; ``beta != 1`` no longer bounds :math:`\log p(x)`.

    Example:
        >>> import torch
        >>> from torch.distributions import Normal, Independent
        >>> q = Independent(Normal(torch.zeros(2, requires_grad=True), torch.ones(2)), 1)
        >>> est = ELBO(num_particles=4).loss(q, lambda z: Normal(0., 1.).log_prob(z).sum(-1))
        >>> est.loss.shape
        torch.Size([])
    """

    num_particles: int = 1
    gradient: str = "reparam"
    analytic: bool = True
    beta: float = 1.0
    baseline: EMABaseline = field(default_factory=EMABaseline, repr=False, compare=False)

    def __post_init__(self):
        _check_particles(self.num_particles)
        if self.gradient not in ("reparam", "stl", "score"):
            raise ValueError(f"ELBO gradient must be 'reparam', 'stl' or 'score', got {self.gradient!r}")

    def loss(self, q: Distribution, log_p: LogDensity, prior: Distribution | None = None) -> BoundEstimate:
        S, grad = self.num_particles, self.gradient
        closed = None
        if self.analytic and grad != "stl":
            closed = _entropy(q) if prior is None else _kl(q, prior)
        z, lq = draw(q, S, grad, need_log_q=closed is None or grad == "score")
        lp = log_p(z)
        rate = distortion = None
        if prior is None:  # closed = entropy H[q]
            signal = lp if closed is not None else lp - lq  # per-particle part of the bound
            bound = signal.mean(0) if closed is None else signal.mean(0) + closed
            loss = -bound
        else:  # closed = KL(q || prior); lp is the log likelihood
            distortion = -lp.mean(0)
            if closed is not None:
                rate, signal = closed, lp
            else:
                rate_s = lq - prior.log_prob(z)
                rate, signal = rate_s.mean(0), lp - self.beta * rate_s
            bound = -(distortion + rate)
            loss = distortion + self.beta * rate
        if grad == "score":
            f = signal.detach()
            b = leave_one_out(f) if S >= 2 else self.baseline.value(f)
            loss = _surrogate(loss, -((f - b) * lq).mean(0))
        lw = None
        if lq is not None:
            lw = (lp - lq if prior is None else lp + prior.log_prob(z) - lq).detach()
        return BoundEstimate(
            loss=loss if loss.dim() == 0 else loss.mean(),
            bound=bound.detach(),
            log_weights=lw,
            rate=None if rate is None else rate.detach(),
            distortion=None if distortion is None else distortion.detach(),
        )


def _log_weights(q, log_p, prior, k, gradient) -> tuple[Tensor, Tensor, Tensor]:
    z, lq = draw(q, k, gradient)
    lp = log_p(z)
    if prior is not None:
        lp = lp + prior.log_prob(z)
    return z, lp, lq


@dataclass(frozen=True)
class IWAE:
    r"""Importance-weighted bound with ``num_particles`` = K draws.

    Args:
        num_particles: K, the number of importance samples (``1`` is the ELBO, Monte Carlo form).
        gradient: ``"reparam"``, ``"stl"``, ``"dreg"`` (doubly reparameterized, Tucker et al. 2019,
            arXiv:1810.04152: weights :math:`\tilde w_k^2` on the path gradient for q's parameters,
            the usual :math:`\tilde w_k` for the model's) or ``"score"`` (VIMCO, Mnih & Rezende 2016,
            arXiv:1602.06725, needs ``num_particles >= 2``).
    """

    num_particles: int = 5
    gradient: str = "reparam"

    def __post_init__(self):
        _check_particles(self.num_particles)
        if self.gradient not in ("reparam", "stl", "dreg", "score"):
            raise ValueError(f"IWAE gradient must be reparam/stl/dreg/score, got {self.gradient!r}")
        if self.gradient == "score" and self.num_particles < 2:
            raise ValueError("the VIMCO score-function estimator needs num_particles >= 2")

    @property
    def k(self) -> int:
        """K (the papers' name for ``num_particles``)."""
        return self.num_particles

    def loss(self, q: Distribution, log_p: LogDensity, prior: Distribution | None = None) -> BoundEstimate:
        z, lp, lq = _log_weights(q, log_p, prior, self.num_particles, self.gradient)
        if self.gradient == "score":
            return _vimco(lp, lq)
        lw = lp - lq
        if self.gradient == "dreg" and z.requires_grad:
            # The gradient reaching z_k is w~_k * d w_k / dz_k; scaling it by w~_k again gives DReG's
            # w~_k^2 on the path to q's parameters, while the model's parameters (reached through lp
            # directly, not through z) keep the plain IWAE weights w~_k.
            wt = torch.softmax(lw.detach(), 0)
            event_dims = z.dim() - wt.dim()
            z.register_hook(lambda g: g * wt.reshape(wt.shape + (1,) * event_dims))
        bound = _log_mean_exp(lw, 0)
        return BoundEstimate(loss=-bound.mean(), bound=bound.detach(), log_weights=lw.detach())


def _vimco(lp: Tensor, lq: Tensor) -> BoundEstimate:
    """VIMCO: per-sample learning signal L - L_{-k}, with w_k replaced by the mean of the others."""
    K = lp.shape[0]
    lw = lp - lq.detach()
    bound = _log_mean_exp(lw, 0)
    lwd = lw.detach()
    others_mean = (lwd.sum(0, keepdim=True) - lwd) / (K - 1)  # (K, *batch)
    # L_{-k}: log-mean-exp over the set where w_k is replaced by exp(mean of the other log-weights)
    eye = torch.eye(K, dtype=lwd.dtype, device=lwd.device).reshape(K, K, *([1] * (lwd.dim() - 1)))
    replaced = lwd.unsqueeze(0) * (1 - eye) + others_mean.unsqueeze(1) * eye  # [k, j, ...]
    loo = _log_mean_exp(replaced, 1)  # (K, *batch)
    signal = (bound.detach().unsqueeze(0) - loo).detach()
    # gradient: sum_k signal_k * dlog q_k + sum_k w~_k d(log p_k - log q_k)
    wt = torch.softmax(lwd, 0)
    surrogate = (signal * lq).sum(0) - (wt * lq).sum(0)
    loss = _surrogate(-bound, -surrogate)
    return BoundEstimate(loss=loss.mean(), bound=bound.detach(), log_weights=lwd)


@dataclass(frozen=True)
class Renyi:
    r"""Variational Rényi bound :math:`\mathcal{L}_\alpha` with ``num_particles`` draws (``alpha=0``: IWAE;
    ``alpha→1``: ELBO).

    For :math:`\alpha<1` it is a lower bound on :math:`\log p(x)` (Li & Turner 2016); :math:`\alpha>1` gives
    an upper bound in expectation with infinite samples, not with finite ``k``.
    """

    alpha: float = 0.5
    num_particles: int = 5
    gradient: str = "reparam"

    def __post_init__(self):
        _check_particles(self.num_particles)
        if self.gradient not in ("reparam", "stl"):
            raise ValueError(f"Renyi gradient must be 'reparam' or 'stl', got {self.gradient!r}")

    def loss(self, q: Distribution, log_p: LogDensity, prior: Distribution | None = None) -> BoundEstimate:
        _, lp, lq = _log_weights(q, log_p, prior, self.num_particles, self.gradient)
        lw = lp - lq
        if abs(1 - self.alpha) < 1e-6:
            bound = lw.mean(0)
        else:
            bound = _log_mean_exp((1 - self.alpha) * lw, 0) / (1 - self.alpha)
        return BoundEstimate(loss=-bound.mean(), bound=bound.detach(), log_weights=lw.detach())
