r"""Bridge sampling of :math:`\log p(x)` between a Gaussian proposal and the posterior (Meng & Wong 1996,
"Simulating ratios of normalizing constants via a simple identity", Statistica Sinica 6:831; Gronau et al.
2017, "A tutorial on bridge sampling", arXiv:1703.05984, and their R package ``bridgesampling``).

For any proposal g and bridge function h,
:math:`p(x) = E_g[h\,\tilde p] / E_{\rm post}[h\,g]` with :math:`\tilde p(u) = p_U(x, u)`. With ``N2`` draws
:math:`\tilde u_j\sim g`, ``N1`` posterior draws :math:`u_i^*`, :math:`l(u) = \tilde p(u)/g(u)` and
:math:`s_k = N_k/(N_1+N_2)`, the optimal h gives the iterative scheme

.. math:: \hat r^{(t+1)} = \frac{\frac{1}{N_2}\sum_j l(\tilde u_j)\,/\,(s_1 l(\tilde u_j) + s_2 \hat r^{(t)})}
                               {\frac{1}{N_1}\sum_i 1\,/\,(s_1 l(u^*_i) + s_2 \hat r^{(t)})},

whose terms are bounded (by :math:`1/s_1` and :math:`1/(s_2\hat r)`): unlike importance sampling, the error
is finite whatever the tails, and its estimate (Frühwirth-Schnatter 2004, eq. 11, as in ``bridgesampling``)

.. math:: \mathrm{RE}^2(\hat r) \approx \frac{\mathrm{Var}(\bar a)}{\bar a^2} + \frac{\mathrm{Var}(\bar b)}{\bar b^2}

is honest once the posterior draws are. Here the autocorrelation of the MCMC draws enters through
``Var(b̄)`` computed from the chains' means (each chain is one batch), and :math:`\mathrm{se}(\log\hat r)
\approx \mathrm{RE}`.

**Posterior draws.** HMC (:mod:`.hmc`) from ``num_chains`` chains started at draws of q, with the metric from
the curvature at q's mean (``2D`` gradients), step size adapted during the first ``warmup`` share of the
budget and the metric re-estimated from the chains halfway through it; the rest of the budget gives
``num_chains × K`` draws.

**Proposal.** As in ``bridgesampling``: a Gaussian with the mean and covariance of posterior draws. To keep
the proposal independent of the draws it is bridged with, the chains are split in two halves, each half's
Gaussian is bridged with the other half's draws, and the two estimates are averaged (cross-fitting); the
reported se adds their two se's (no independence assumed) and the halves must agree.

**Trust.** Reliable when the Meng–Wong iteration converged, every split-:math:`\hat R` of the chains (log
density and coordinates) is at most ``max_rhat``, no chain-averaged quantity drifts between the first and
second half of the draws (:func:`drift_z`), the mean acceptance rate is above 0.2 and the two halves agree
within 3 combined se's. Otherwise the estimate is returned, marked unreliable, with the reason.

Cost: ``budget`` model gradient evaluations, plus ``N2`` gradient-free log densities at proposal draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution, MultivariateNormal

from ..utils import seeded
from .evidence_result import LogEvidence
from .hmc import Target, _stable_cholesky, adapt_step_size, check_dtype, gaussian_metric, hmc_step, trajectory_step
from .importance import check_event_shape

__all__ = ["BridgeHalf", "TrustLimits", "bridge", "drift_z", "meng_wong", "split_rhat"]


@dataclass(frozen=True)
class BridgeHalf:
    """One Meng–Wong estimate: ``log_r`` (nats), ``se``, iterations used and whether it converged."""

    log_r: float
    se: float
    iterations: int
    converged: bool


def meng_wong(
    log_l_post: Tensor, log_l_prop: Tensor, chains: int, tol: float = 1e-10, max_iter: int = 1000
) -> BridgeHalf:
    r"""Iterate the optimal bridge from :math:`\log l` at posterior draws ``(K * chains,)`` (chain-major: row
    ``k * chains + c`` is chain c's k-th draw) and at proposal draws ``(N2,)``; the error uses chain means."""
    l1, l2 = log_l_post.double(), log_l_prop.double()
    n1, n2 = l1.numel(), l2.numel()
    log_s1, log_s2 = math.log(n1 / (n1 + n2)), math.log(n2 / (n1 + n2))
    finite2 = l2[torch.isfinite(l2)]
    log_r = float(torch.logsumexp(finite2, 0) - math.log(n2)) if finite2.numel() else 0.0
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        a = l2 - torch.logaddexp(log_s1 + l2, torch.full_like(l2, log_s2 + log_r))
        b = -torch.logaddexp(log_s1 + l1, torch.full_like(l1, log_s2 + log_r))
        new = float(torch.logsumexp(a, 0) - math.log(n2) - (torch.logsumexp(b, 0) - math.log(n1)))
        if not math.isfinite(new):
            break
        done = abs(new - log_r) < tol
        log_r = new
        if done:
            converged = True
            break
    a = torch.exp(l2 - torch.logaddexp(log_s1 + l2, torch.full_like(l2, log_s2 + log_r)))
    b = torch.exp(log_r - torch.logaddexp(log_s1 + l1, torch.full_like(l1, log_s2 + log_r)))  # r*b, bounded
    batch = b.reshape(-1, chains).mean(0)  # chain means
    re2 = a.var() / (n2 * a.mean() ** 2) + batch.var() / (chains * b.mean() ** 2)
    return BridgeHalf(log_r, float(re2.sqrt()), it, converged)


def split_rhat(x: Tensor) -> Tensor:
    r"""Split-:math:`\hat R` (Gelman et al. BDA3 §11.4) of ``(K, chains, ...)`` draws, each chain cut in two
    halves; returns ``(...)``. Values near 1 mean the chains have forgotten where they started."""
    K = x.shape[0] // 2
    halves = torch.cat([x[:K], x[K : 2 * K]], dim=1).double()  # (K, 2*chains, ...)
    means = halves.mean(0)
    W = halves.var(0).mean(0)
    B = K * means.var(0)
    var = (K - 1) / K * W + B / K
    return (var / W.clamp_min(1e-300)).sqrt()


def drift_z(x: Tensor) -> Tensor:
    r"""How far the chains still drift: for ``(K, chains, ...)`` draws, the mean change from the first to the second
    half of each chain over its across-chain standard error (a t statistic with ``chains - 1`` degrees of
    freedom under stationarity, whatever the autocorrelation); returns ``(...)``."""
    K = x.shape[0] // 2
    d = x[K : 2 * K].double().mean(0) - x[:K].double().mean(0)  # (chains, ...)
    return d.mean(0) / (d.std(0) / math.sqrt(d.shape[0])).clamp_min(1e-300)


@dataclass(frozen=True)
class TrustLimits:
    r"""When bridge sampling's estimate is trusted: ``max_rhat``, the largest split-:math:`\hat R` of the kept
    draws (short chains inflate it by about (autocorrelation time - 1) / chain length even when stationary,
    hence 1.1); ``max_drift``, the largest |t| of :func:`drift_z` (first vs second half of the kept draws)."""

    max_rhat: float = 1.1
    max_drift: float = 4.0


def bridge(
    model,
    q: Distribution,
    budget: int = 20_000,
    num_chains: int | None = None,
    num_leapfrog: int = 3,
    warmup: float = 0.4,
    trust: TrustLimits = TrustLimits(),
    seed: int | None = None,
) -> LogEvidence:
    r"""Bridge-sampling estimate of :math:`\log p(x)`, posterior draws by HMC started from q.

    Args:
        model: a :class:`~varinf.models.Model`.
        q: a Distribution over the model's unconstrained space (starts the chains, sets their first metric).
        budget: model gradient evaluations for the curvature and the chains.
        num_chains: parallel HMC chains (even; split in two halves for cross-fitting); default
            ``budget // 300`` within [16, 64].
        num_leapfrog: leapfrog steps per HMC transition.
        warmup: share of the budget spent adapting (step size, metric) before draws are kept.
        trust: :class:`TrustLimits`, the largest split-:math:`\hat R` and drift for which the estimate is trusted.
        seed: seeds the draws (the global RNG is left untouched); None: fresh randomness.

    Returns:
        :class:`~varinf.diagnostics.evidence_result.LogEvidence` with ``method="bridge"``.

    Example:
        >>> import torch
        >>> from torch.distributions import MultivariateNormal
        >>> from varinf.models import LinearRegression
        >>> m = LinearRegression.correlated(rho=0.9, seed=0).double()
        >>> p = m.exact_posterior()
        >>> q = MultivariateNormal(p.loc, p.covariance_matrix.diag().diag() * 0.3)  # narrow, uncorrelated
        >>> ev = bridge(m, q, budget=5000, seed=0)
        >>> ev.reliable and abs(ev.estimate - m.exact_log_evidence()) < 3 * ev.se + 0.01
        True
    """
    check_event_shape(model, q)
    check_dtype(model, q)
    if num_chains is None:
        num_chains = min(64, max(16, 2 * (budget // 600)))
    if num_chains < 8 or num_chains % 2:
        raise ValueError(f"num_chains must be even and at least 8, got {num_chains}")
    with seeded(seed), torch.no_grad():
        return _bridge(model, q, budget, num_chains, num_leapfrog, warmup, (trust.max_rhat, trust.max_drift))


def _bridge(model, q, budget, N, n_leap, warmup, limits) -> LogEvidence:
    target = Target(model.log_density)
    metric = gaussian_metric(target, q, model.dim)
    per_iter = N * n_leap
    iters = (budget - target.grad_evals - N) // per_iter
    n_warm = int(warmup * iters)
    n_keep = iters - n_warm
    if n_warm < 4 or n_keep < 4:
        need = target.grad_evals + N + 8 * per_iter
        raise ValueError(
            f"a bridge budget of {budget} gradient evaluations is too small for {N} chains × {n_leap} leapfrog "
            f"steps: give at least {int(need / min(warmup, 1 - warmup))}"
        )
    state = target(q.sample((N,)))
    L, cov = metric.scale_tril, metric.posterior_cov
    step, history = min(1.0, 1.5 * model.dim**-0.25), []
    for i in range(n_warm):
        state, acc = hmc_step(target, state, L, min(step, trajectory_step(n_leap)), n_leap)
        step = adapt_step_size(step, acc)
        history.append(state.u)
        if i == n_warm // 2:  # re-estimate the metric from the chains' second quarter, shrunk toward the first
            pooled = torch.cat(history[len(history) // 2 :])
            n = pooled.shape[0] / 2  # correlated draws: count half
            w = n / (n + model.dim + 10)
            cov = w * torch.cov(pooled.T).reshape(cov.shape) + (1 - w) * cov
            L = _stable_cholesky(cov)
    draws, log_p, accepts = [], [], []
    for _ in range(n_keep):
        state, acc = hmc_step(target, state, L, min(step, trajectory_step(n_leap)), n_leap)
        draws.append(state.u)
        log_p.append(state.log_p)
        accepts.append(float(acc.mean()))
    U = torch.stack(draws)  # (K, N, D)
    LP = torch.stack(log_p)  # (K, N)
    return _estimate(target, U, LP, accepts, limits, metric.source)


def _fit_gaussian(u: Tensor) -> MultivariateNormal:
    x = u.reshape(-1, u.shape[-1])
    cov = torch.cov(x.T).reshape(x.shape[-1], x.shape[-1])
    return MultivariateNormal(x.mean(0), scale_tril=_stable_cholesky(cov), validate_args=False)


def _estimate(target, U, LP, accepts, limits, metric_source) -> LogEvidence:
    max_rhat, max_drift = limits
    K, N, D = U.shape
    halves = (torch.arange(0, N, 2), torch.arange(1, N, 2))
    results = []
    for fit_idx, use_idx in (halves, halves[::-1]):
        g = _fit_gaussian(U[:, fit_idx])
        post, lp_post = U[:, use_idx].reshape(-1, D), LP[:, use_idx].reshape(-1)
        prop = g.sample((post.shape[0],))
        lp_prop = target.log_p_only(prop)
        results.append(meng_wong(lp_post - g.log_prob(post), lp_prop - g.log_prob(prop), len(use_idx)))
    est = 0.5 * (results[0].log_r + results[1].log_r)
    se = 0.5 * (results[0].se + results[1].se)  # no independence assumed between the halves
    rhat = torch.cat([split_rhat(U).reshape(-1), split_rhat(LP).reshape(-1)])
    rhat = rhat[torch.isfinite(rhat)]
    worst = float(rhat.max()) if rhat.numel() else math.nan
    drift = torch.cat([drift_z(U).reshape(-1), drift_z(LP).reshape(-1)]).abs()
    drift = float(drift[torch.isfinite(drift)].max()) if torch.isfinite(drift).any() else math.nan
    gap = abs(results[0].log_r - results[1].log_r)
    gap_se = math.hypot(results[0].se, results[1].se)
    acc = sum(accepts) / len(accepts)
    reasons = []
    if not all(r.converged for r in results):
        reasons.append("the Meng–Wong iteration did not converge")
    if not worst <= max_rhat:
        reasons.append(f"split R-hat {worst:.3f} > {max_rhat} (the chains have not mixed)")
    if not drift <= max_drift:
        reasons.append(f"the chains still drift (|t| = {drift:.1f} > {max_drift} between the halves of their draws)")
    if acc < 0.2:
        reasons.append(f"HMC acceptance {acc:.2f} < 0.2")
    if not gap <= 3 * gap_se:
        reasons.append(f"the two halves disagree by {gap:.3f} nats ({gap / max(gap_se, 1e-300):.1f} se)")
    if not math.isfinite(se) or not math.isfinite(est):
        reasons.append("non-finite estimate")
    ess = N * K * float(torch.var(LP.double()) / (K * LP.double().mean(0).var()).clamp_min(1e-300))
    details = (
        f"{N} HMC chains × {K} draws, split R-hat ≤ {worst:.3f}, drift |t| ≤ {drift:.1f}, acceptance {acc:.2f}, "
        f"metric from {metric_source}"
    )
    note = ("; ".join(reasons) + "; " + details) if reasons else details
    return LogEvidence(
        est, se, N * K, min(ess, N * K), "posterior draws", "bridge", not reasons, math.nan,
        target.grad_evals, target.density_evals, note,
    )  # fmt: skip
