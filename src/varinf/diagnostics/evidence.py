r"""Importance-sampled log evidence :math:`\log p(x)` with a Monte Carlo standard error.

With draws :math:`u_s` from a proposal :math:`r` over the model's unconstrained space,

.. math::
    \hat Z = \frac1S \sum_{s=1}^S w_s,\qquad w_s = \frac{p_U(x, u_s)}{r(u_s)},\qquad
    \mathrm{se}(\log\hat Z) \approx \frac{\mathrm{sd}(w)}{\sqrt S\,\bar w}
    = \sqrt{\textstyle\sum_s \tilde w_s^2 - 1/S}

(delta method; :math:`\tilde w_s = w_s/\sum_t w_t`). :math:`\hat Z` is unbiased for :math:`p(x)`;
:math:`\log \hat Z` is biased low by about :math:`\mathrm{se}^2/2` (Jensen), negligible when se is small.
The standard error is only meaningful when the weights have finite variance, i.e. PSIS
:math:`\hat k < 0.5`: above that the sample variance underestimates the truth and the reported se is
too small. That is why q (fitted to the posterior) is a good proposal and the prior usually is not:
sampling :math:`u_s` from the prior gives :math:`w_s = p(x\mid z_s)`, and when the posterior is much
narrower than the prior almost no prior draw lands where the likelihood is large (see the README here
for a worked example). Units: nats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

__all__ = ["ImportanceDraws", "LogEvidence", "importance_draws", "importance_log_evidence", "log_evidence"]


@dataclass(frozen=True)
class LogEvidence:
    r"""An importance-sampling estimate of :math:`\log p(x)` (nats).

    Attributes:
        estimate: :math:`\log \hat Z`.
        se: delta-method Monte Carlo standard error of the estimate.
        num_draws: ``S``.
        ess: effective sample size of the raw weights, :math:`1/\sum_s \tilde w_s^2`.
        proposal: a label for the proposal (``"q"``, ``"prior"``, ...).
    """

    estimate: float
    se: float
    num_draws: int
    ess: float
    proposal: str = "q"

    def __str__(self) -> str:
        return f"{self.estimate:.4f} ± {self.se:.4f} nats ({self.proposal} as proposal, {self.num_draws} draws)"


def log_evidence(log_weights: Tensor, proposal: str = "q") -> LogEvidence:
    """:math:`\\log\\hat Z` and its standard error from ``(S,)`` log weights (``-inf`` = weight 0)."""
    lw = torch.as_tensor(log_weights).detach().to(torch.float64).flatten()
    S = lw.numel()
    if S < 2:
        raise ValueError(f"need at least 2 log weights, got {S}")
    if torch.isnan(lw).any():
        raise ValueError("log weights contain NaN")
    lse = torch.logsumexp(lw, 0)
    if not torch.isfinite(lse):
        return LogEvidence(lse.item(), math.inf, S, 0.0, proposal)
    sum_sq = torch.exp(torch.logsumexp(2 * (lw - lse), 0)).item()  # sum of squared normalized weights
    se = math.sqrt(max(sum_sq - 1.0 / S, 0.0))
    return LogEvidence((lse - math.log(S)).item(), se, S, 1.0 / sum_sq, proposal)


@dataclass(frozen=True)
class ImportanceDraws:
    """Draws ``u`` ``(S, D)`` from a proposal with ``log_p`` (model, unconstrained) and ``log_q`` ``(S,)``.

    ``num_failed`` counts draws whose model log density was NaN; their ``log_p`` is set to ``-inf``
    (weight 0), which biases estimates if there are many: it is reported, never hidden.
    """

    u: Tensor
    log_p: Tensor
    log_q: Tensor
    num_failed: int = 0

    @property
    def log_weights(self) -> Tensor:
        return self.log_p - self.log_q


@torch.no_grad()
def importance_draws(
    model, proposal: Distribution, num_draws: int = 4000, seed: int | None = 0, chunk: int = 1000
) -> ImportanceDraws:
    r"""Draw ``num_draws`` points from ``proposal`` (event shape ``(model.dim,)``) and evaluate
    :math:`\log p_U(x, u)` (the model's unconstrained log density) and :math:`\log r(u)` (returned in float64),
    ``chunk`` draws at a time to bound memory. The global RNG is left untouched when ``seed`` is given."""
    if tuple(proposal.event_shape) != (model.dim,):
        raise ValueError(
            f"the proposal's event shape {tuple(proposal.event_shape)} must be ({model.dim},), the model's "
            "unconstrained dimension"
        )
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        us, lps, lqs = [], [], []
        for start in range(0, num_draws, chunk):
            n = min(chunk, num_draws - start)
            if hasattr(proposal, "rsample_and_log_prob"):  # zuko flows: one pass, no inverse
                u, lq = proposal.rsample_and_log_prob((n,))
            else:
                u = proposal.sample((n,))
                lq = proposal.log_prob(u)
            us.append(u)
            lqs.append(lq)
            lps.append(model.log_density(u))
    u, log_p, log_q = torch.cat(us), torch.cat(lps).double(), torch.cat(lqs).double()
    bad = torch.isnan(log_p) | (log_p == math.inf)
    failed = int(bad.sum())
    if failed:
        log_p = torch.where(bad, torch.full_like(log_p, -math.inf), log_p)
    if not torch.isfinite(log_q).all():
        raise ValueError("the proposal's log density is not finite at some of its own draws")
    return ImportanceDraws(u, log_p, log_q, failed)


def importance_log_evidence(
    model, proposal: Distribution, num_draws: int = 4000, seed: int | None = 0, label: str = "proposal"
) -> LogEvidence:
    """:func:`log_evidence` with ``num_draws`` draws of ``proposal`` (any Distribution over the model's
    unconstrained space: a fitted q, or the prior for the naive estimator).

    Example:
        >>> import torch
        >>> from torch.distributions import Independent, Normal
        >>> from varinf.models import NormalNormal
        >>> m = NormalNormal(torch.tensor([0.5, 1.5]), sigma=1.0, prior_scale=1.0)
        >>> post = m.exact_posterior()
        >>> q = Independent(Normal(post.loc.reshape(1).float(), post.scale.reshape(1).float()), 1)
        >>> ev = importance_log_evidence(m, q)   # q = exact posterior: every weight equals p(x)
        >>> abs(ev.estimate - m.exact_log_evidence()) < 1e-4 and ev.se < 1e-4
        True
    """
    return log_evidence(importance_draws(model, proposal, num_draws, seed).log_weights, label)
