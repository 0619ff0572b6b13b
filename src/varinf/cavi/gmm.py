r"""Bayesian Gaussian mixture fitted by coordinate-ascent VI (Bishop 2006, §10.2).

Model: :math:`\pi \sim \mathrm{Dir}(\alpha_0)`, :math:`(\mu_k, \Lambda_k) \sim
\mathcal N(m_0, (\beta_0\Lambda_k)^{-1})\,\mathcal W(W_0, \nu_0)`, :math:`z_n \sim \mathrm{Cat}(\pi)`,
:math:`x_n \sim \mathcal N(\mu_{z_n}, \Lambda_{z_n}^{-1})`. CAVI alternates

* E-step: :math:`\log r_{nk} = \mathbb E\log\pi_k + \mathbb E\log\mathcal N(x_n|\mu_k,\Lambda_k^{-1}) + c_n`;
* M-step (:mod:`varinf.cavi.expfam`): Dirichlet and Normal-Wishart posteriors = prior + expected statistics.

The recorded bound after each E-step is :math:`\max_r \mathcal L(r, q(\pi,\mu,\Lambda))
= \sum_n \log\sum_k e^{\mathbb E\log\pi_k + \mathbb E\log\mathcal N_{nk}}
- \mathrm{KL}(q(\pi)\|p(\pi)) - \sum_k \mathrm{KL}(q(\mu_k,\Lambda_k)\|p(\mu_k,\Lambda_k))`, the full ELBO
(no dropped constants) of the returned posterior; every update is an exact coordinate maximization, so
it never decreases. ``elbo_`` and ``lower_bound_`` are this bound **per sample** (nats).

**Stopping rule** (both must hold between consecutive iterations; the bound alone stalls for dozens of
iterations while a surplus component slowly empties, and stopping there keeps it):

* the per-sample bound changed by at most ``tol`` relative to its size,
  :math:`|\mathcal L_t - \mathcal L_{t-1}| \le \mathrm{tol}\cdot\max(|\mathcal L_t|, 1)` (free of the
  number of points: the bound is per sample);
* no component's expected count moved by more than ``weight_tol`` of itself,
  :math:`\max_k |N_k^{(t)} - N_k^{(t-1)}| / \max(N_k^{(t)}, 1) \le \mathrm{weight\_tol}`.

**Pruning.** The Dirichlet prior empties surplus components (their expected count :math:`N_k` collapses
to ~0 within a few iterations once it is below a point or so). A component whose share of the data
:math:`N_k/N` falls below ``weight_threshold`` (default: one expected point, :math:`1/N`) is removed from
the model, prior included: later iterations fit the remaining ``n_components_`` components (each keeps the
prior :math:`\alpha_0 = 1/K` of the original ``n_components``), and every learned attribute has one row per
remaining component. Removing an empty component raises the bound by an Occam factor of about
:math:`\alpha_0\log N` nats in total, so ``lower_bound_`` is the bound of the pruned model;
``weight_threshold=0`` keeps all ``n_components`` (as scikit-learn does).

**Delete moves.** CAVI can also stall where every surplus component keeps a few points, far from a better
optimum with fewer components (wine, 178 points in 13-D with 10 components: the 10-component stall is 1.3
nats/point below a 3-component fit started from the cultivar labels). After CAVI converges, the smallest
component is removed, its points shared among the others and CAVI run to convergence again; the result is
kept if the bound of the original ``n_components`` model rose, else the next smallest is tried, until no
removal helps (Hughes & Sudderth 2013, "memoized online VI"'s delete move). The result is never worse than
plain CAVI's; when nothing is removed it costs one short CAVI run per component (on separated clusters
about 1.5-2x the time of plain CAVI; ``delete_moves=False`` turns them off). ``n_iter_`` and ``elbo_``
describe the last CAVI run kept; restarts (``n_init``) compare the bound of the original model.

Example::

    >>> import torch
    >>> from varinf.cavi import BayesianGaussianMixture
    >>> x = torch.cat([torch.randn(200, 2) - 4, torch.randn(200, 2) + 4])
    >>> gmm = BayesianGaussianMixture(n_components=5, random_state=0).fit(x)
    >>> gmm.n_components_, gmm.weights_.shape
    (2, torch.Size([2]))
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import ConvergenceWarning
from ..utils.progress_bars import progress
from .clustering import kmeans, kmeans_plus_plus
from .expfam import ConjugateDirichlet, ConjugateNormalWishart
from .gaussian_data import GaussianData
from .validation import as_data_matrix, check_positive, seed_generator

__all__ = ["BayesianGaussianMixture"]

_LOG_2PI = math.log(2 * math.pi)


@dataclass
class _Run:
    """One CAVI run: the fitted factors of the components it kept, with their priors."""

    weights: ConjugateDirichlet
    components: ConjugateNormalWishart
    elbo: list[float]
    converged: bool
    n_iter: int
    kept: Tensor | None = None  # indices of the original components left after pruning (None: all)
    full_bound: float = math.nan  # the bound in the original K-component model (restarts compare it)


def _select(q, keep: Tensor):
    """The components ``keep`` (a mask or indices) of a Dirichlet or Normal-Wishart factor (first axis)."""
    return type(q)(*(a[keep] for a in q.natural))


def _embed(q, full, kept: Tensor):
    """``q``'s components at the positions ``kept`` of ``full`` (the others as in ``full``)."""
    out = [a.clone() for a in full.natural]
    for o, a in zip(out, q.natural, strict=True):
        o[kept] = a
    return type(q)(*out)


class BayesianGaussianMixture:
    """Variational Bayesian Gaussian mixture (full covariances, Dirichlet weights), scikit-learn-style API.

    Args:
        n_components: number of components ``K`` (an upper bound; unused ones are pruned).
        tol: relative change of the per-sample bound below which it counts as converged (see the stopping
            rule above; default ``1e-6``; ``0``: run ``max_iter`` iterations).
        weight_tol: relative change of every component's expected count below which the weights count as
            settled (default ``1e-3``; ``None``: the bound alone decides).
        weight_threshold: share of the data below which a component is pruned (default ``None``: fewer than
            one expected point, ``1/N``; ``0``: never prune, and no delete moves).
        delete_moves: after CAVI converges, try removing the smallest component and keep the result if the
            bound of the ``n_components`` model rises; repeat (see the pruning section above).
        max_iter: cap on CAVI iterations per initialization.
        n_init: restarts; the one with the highest bound is kept.
        init_params: ``"kmeans"``, ``"k-means++"`` (nearest seed) or ``"random"`` responsibilities.
        resp_init: optional starting responsibilities, ``(N, K)`` rows on the simplex or ``(N,)`` integer
            labels; overrides ``init_params`` (then ``n_init`` must be 1).
        weight_concentration_prior: :math:`\\alpha_0` (default ``1/K``).
        mean_precision_prior: :math:`\\beta_0` (default 1).
        mean_prior: :math:`m_0` ``(D,)`` (default: the data mean).
        degrees_of_freedom_prior: :math:`\\nu_0 > D - 1` (default ``D``).
        covariance_prior: :math:`W_0^{-1}`, ``(D, D)`` or a scalar times the identity (default: the
            data covariance), so :math:`\\mathbb E\\Lambda = \\nu_0 W_0` — the scikit-learn convention.
        random_state, dtype, device, progress: as in :class:`~varinf.cavi.LatentDirichletAllocation`.

    Learned attributes (torch tensors, data coordinates; one row per component left after pruning):
    ``n_components_``, ``weights_`` (:math:`\\mathbb E\\pi`),
    ``weight_concentration_``, ``means_``, ``mean_precision_``, ``degrees_of_freedom_``,
    ``covariances_`` (:math:`(\\nu W)^{-1}`), ``precisions_`` (:math:`\\nu W`), ``counts_``,
    ``posterior_`` (:class:`~varinf.cavi.ConjugateNormalWishart`), ``elbo_``, ``lower_bound_``,
    ``converged_``, ``n_iter_``, ``n_features_in_``.
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        tol: float = 1e-6,
        weight_tol: float | None = 1e-3,
        weight_threshold: float | None = None,
        delete_moves: bool = True,
        max_iter: int = 1000,
        n_init: int = 1,
        init_params: str = "kmeans",
        resp_init=None,
        weight_concentration_prior: float | None = None,
        mean_precision_prior: float = 1.0,
        mean_prior=None,
        degrees_of_freedom_prior: float | None = None,
        covariance_prior=None,
        random_state=None,
        dtype: torch.dtype | None = None,
        device=None,
        progress: bool | None = None,
    ):
        self.n_components = n_components
        self.tol = tol
        self.weight_tol = weight_tol
        self.weight_threshold = weight_threshold
        self.delete_moves = delete_moves
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.resp_init = resp_init
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.dtype = dtype
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------------ priors and initialization
    def _check_params(self) -> None:
        check_positive(self.n_components, "n_components", integer=True)
        check_positive(self.tol, "tol", allow_zero=True)
        check_positive(self.weight_tol, "weight_tol", allow_zero=True, allow_none=True)
        check_positive(self.weight_threshold, "weight_threshold", allow_zero=True, allow_none=True)
        if self.weight_threshold is not None and self.weight_threshold >= 1:
            raise ValueError(f"weight_threshold must be below 1 (a share of the data), got {self.weight_threshold!r}")
        check_positive(self.max_iter, "max_iter", integer=True, allow_zero=True)
        check_positive(self.n_init, "n_init", integer=True)
        if self.init_params not in ("kmeans", "k-means++", "random"):
            raise ValueError(f"init_params must be 'kmeans', 'k-means++' or 'random', got {self.init_params!r}")
        check_positive(self.weight_concentration_prior, "weight_concentration_prior", allow_none=True)
        check_positive(self.mean_precision_prior, "mean_precision_prior")
        check_positive(self.degrees_of_freedom_prior, "degrees_of_freedom_prior", allow_none=True)
        if self.resp_init is not None and self.n_init != 1:
            raise ValueError("resp_init fixes the starting point; use n_init=1 with it")

    def _priors(self, x: Tensor) -> tuple[ConjugateDirichlet, ConjugateNormalWishart]:
        """Priors in centered coordinates (``x`` is already centered at the data mean ``self._shift``)."""
        (n, d), k, kw = x.shape, self.n_components, {"dtype": x.dtype, "device": x.device}
        alpha0 = self.weight_concentration_prior if self.weight_concentration_prior is not None else 1.0 / k
        nu0 = self.degrees_of_freedom_prior if self.degrees_of_freedom_prior is not None else float(d)
        if nu0 <= d - 1:
            raise ValueError(f"degrees_of_freedom_prior must exceed n_features - 1 = {d - 1}, got {nu0}")
        if self.mean_prior is None:
            m0 = torch.zeros(d, **kw)
        else:
            m0 = as_data_matrix(torch.as_tensor(self.mean_prior).reshape(1, -1), "mean_prior", **kw, n_features=d)
            m0 = m0[0] - self._shift
        if self.covariance_prior is None:
            cov = torch.atleast_2d(torch.cov(x.T)) if n > 1 else torch.eye(d, **kw)
            cov = cov + 1e-9 * cov.diagonal().mean().clamp_min(1e-30) * torch.eye(d, **kw)  # constant columns
        elif isinstance(self.covariance_prior, int | float):
            cov = check_positive(self.covariance_prior, "covariance_prior") * torch.eye(d, **kw)
        else:
            cov = torch.as_tensor(self.covariance_prior, **kw)
            if cov.shape != (d, d) or not bool(torch.isfinite(cov).all()):
                raise ValueError(f"covariance_prior must be a finite ({d}, {d}) matrix, got shape {tuple(cov.shape)}")
            if int(torch.linalg.cholesky_ex(cov).info) != 0 or not torch.allclose(cov, cov.T):
                raise ValueError("covariance_prior must be symmetric positive definite")
        ones = torch.ones(k, **kw)
        prior = ConjugateNormalWishart.from_moments(
            m0.expand(k, d), self.mean_precision_prior * ones, nu0 * ones, cov.expand(k, d, d)
        )
        return ConjugateDirichlet(alpha0 * ones), prior

    def _given_resp(self, x: Tensor) -> Tensor:
        n, k = x.shape[0], self.n_components
        r = torch.as_tensor(np.asarray(self.resp_init) if not isinstance(self.resp_init, Tensor) else self.resp_init)
        if r.ndim == 1 and not r.is_floating_point():
            if r.shape[0] != n or bool((r < 0).any()) or bool((r >= k).any()):
                raise ValueError(f"resp_init labels must have shape ({n},) with values in [0, {k})")
            return torch.nn.functional.one_hot(r.long(), k).to(device=x.device, dtype=x.dtype)
        r = r.to(device=x.device, dtype=x.dtype)
        if r.shape != (n, k) or not bool(torch.isfinite(r).all()) or bool((r < 0).any()):
            raise ValueError(f"resp_init must be ({n},) integer labels or ({n}, {k}) non-negative responsibilities")
        if not torch.allclose(r.sum(-1), torch.ones_like(r[:, 0]), atol=1e-4):
            raise ValueError("resp_init rows must sum to 1")
        return r

    def _initial_resp(self, x: Tensor, gen: torch.Generator) -> Tensor:
        if self.resp_init is not None:
            return self._given_resp(x)
        k = self.n_components
        if self.init_params == "random":
            r = torch.rand(x.shape[0], k, generator=gen, dtype=torch.float64).to(x)
            return r / r.sum(-1, keepdim=True)
        if self.init_params == "kmeans":
            labels = kmeans(x, k, gen)
        else:
            seeds = kmeans_plus_plus(x, k, gen)
            labels = torch.cdist(x, seeds).argmin(-1)
        return torch.nn.functional.one_hot(labels, k).to(x.dtype)

    # ------------------------------------------------------------------ CAVI
    @staticmethod
    def _logits(data: GaussianData, weights: ConjugateDirichlet, comps: ConjugateNormalWishart) -> Tensor:
        """``(K, N)`` :math:`\\mathbb E\\log\\pi_k + \\mathbb E\\log\\mathcal N(x_n|\\mu_k,\\Lambda_k^{-1})` (components first)."""
        s = comps.expected_stats()
        bias = weights.expected_stats() + 0.5 * s.logdet - 0.5 * data.dim * _LOG_2PI - 0.5 * s.quad
        return data.quadratic_t(s.precision, s.precision_mean, bias)

    def _settled(self, elbo: list[float], nk: Tensor, prev_nk: Tensor | None) -> bool:
        """The stopping rule (module docstring): the bound and every component's expected count settled."""
        if self.tol == 0 or len(elbo) < 2 or prev_nk is None or prev_nk.shape != nk.shape:
            return False  # tol=0: run max_iter iterations; just started; or a component was pruned just now
        floor = 10 * torch.finfo(nk.dtype).eps  # float32 rounding: no tolerance below it can be met reliably
        if abs(elbo[-1] - elbo[-2]) > max(self.tol, floor) * max(abs(elbo[-1]), 1.0):
            return False
        if self.weight_tol is None:
            return True
        moved = (nk - prev_nk).abs() / nk.clamp_min(1.0)
        return float(moved.max()) <= max(self.weight_tol, floor)

    def _prune(self, nk: Tensor, n: int) -> Tensor | None:
        """The components to keep (a mask), or ``None`` when none falls below the weight threshold."""
        threshold = self.weight_threshold if self.weight_threshold is not None else 1.0 / n
        keep = nk >= threshold * n
        if threshold == 0 or bool(keep.all()):
            return None
        keep[nk.argmax()] = True  # a threshold above every weight still leaves one component
        return keep

    def _run(self, data: GaussianData, resp: Tensor, w0, c0, bar) -> _Run:
        elbo: list[float] = []
        converged, n_iter, prev_nk = False, 0, None
        k = w0.concentration.shape[0]
        kept = torch.arange(k, device=resp.device)
        resp_t = resp.T
        for it in range(self.max_iter + 1):
            nk, s1, s2 = data.weighted_stats_t(resp_t)
            keep = self._prune(nk, data.n)
            if keep is not None:  # drop the component from q and from the prior; its few points move on
                w0, c0, kept = _select(w0, keep), _select(c0, keep), kept[keep]
                resp_t = resp_t[keep]
                resp_t = resp_t / resp_t.sum(0).clamp_min(torch.finfo(resp_t.dtype).tiny)
                nk, s1, s2 = data.weighted_stats_t(resp_t)
            weights, comps = w0.update(nk), c0.update(nk, s1, s2, nk)  # M-step
            n_iter = it + 1
            logits = self._logits(data, weights, comps)  # E-step, (K, N)
            # softmax and log-normalizer from one exp pass (torch.logsumexp would take a second)
            peak = logits.amax(0)
            unnorm = torch.exp(logits.sub_(peak))
            total = unnorm.sum(0)
            log_norm = peak + total.log()
            kl = weights.kl(w0).double() + comps.kl(c0).sum(dtype=torch.float64)
            elbo.append(float((log_norm.sum(dtype=torch.float64) - kl) / data.n))
            bar.update(1)
            bar.set_postfix(bound=f"{elbo[-1]:.5f}", components=len(nk))
            converged = self._settled(elbo, nk, prev_nk)
            prev_nk = nk
            if converged or it == self.max_iter:
                break
            resp_t = unnorm.div_(total)
        return _Run(weights, comps, elbo, converged, n_iter - 1, kept if len(kept) < k else None)

    def _full_bound(self, data: GaussianData, run: _Run) -> float:
        """``run``'s bound in the original K-component model (pruned components at their prior)."""
        if run.kept is None:
            return run.elbo[-1]
        w0, c0 = self._full_prior
        return self._bound_of(data, _embed(run.weights, w0, run.kept), _embed(run.components, c0, run.kept), w0, c0)

    def _delete_moves(self, data: GaussianData, run: _Run, bar) -> _Run:
        """Remove the smallest component while that raises the bound of the original K-component model.

        CAVI stalls in local optima where every surplus component keeps a few points (wine, 178 points in
        13-D, 10 components: k-means gives each ~18 points and none ever empties; a 3-component fit started
        from the cultivar labels has a bound 1.3 nats/point higher). A delete move (Hughes & Sudderth 2013, "memoized online VI")
        shares the smallest component's points among the others and runs CAVI to convergence from there;
        it is kept only if the bound went up, so the result is never worse than plain CAVI's."""
        w_full, c_full = self._full_prior
        best, best_bound = run, self._full_bound(data, run)
        floor = 10 * torch.finfo(best.weights.concentration.dtype).eps * max(abs(best_bound), 1.0)
        improved = True
        while improved and best.weights.concentration.shape[0] > 1:
            improved = False
            k_full = len(w_full.concentration)
            kept = best.kept if best.kept is not None else torch.arange(k_full, device=data.x.device)
            for k in best.weights.concentration.argsort().tolist():  # the smallest first
                keep = torch.ones(len(kept), dtype=torch.bool, device=data.x.device)
                keep[k] = False
                logits = self._logits(data, _select(best.weights, keep), _select(best.components, keep))
                resp_t = torch.softmax(logits, 0)
                trial = self._run(data, resp_t.T, _select(w_full, kept[keep]), _select(c_full, kept[keep]), bar)
                trial.kept = kept[keep] if trial.kept is None else kept[keep][trial.kept]
                trial_bound = self._full_bound(data, trial)
                if trial_bound > best_bound + floor:
                    best, best_bound, improved = trial, trial_bound, True
                    break
        return best

    def fit(self, X, y=None) -> BayesianGaussianMixture:
        """Fit on ``X`` ``(n_samples, n_features)``; restarts ``n_init`` times and keeps the best bound."""
        self._check_params()
        x = as_data_matrix(X, dtype=self.dtype, device=self.device)
        if x.shape[0] < self.n_components:
            raise ValueError(f"X has {x.shape[0]} samples, fewer than n_components={self.n_components}")
        self._shift = x.mean(0)
        x = x - self._shift
        w0, c0 = self._priors(x)
        self._full_prior = (w0, c0)  # centered coordinates, for bound()
        data = GaussianData(x)
        gen = seed_generator(self.random_state)
        best = None
        desc = f"GMM (CAVI, until converged, at most {self.max_iter + 1} per start)"
        with progress(desc, unit="iterations", enabled=self.progress) as bar:
            for _ in range(self.n_init):
                run = self._run(data, self._initial_resp(x, gen), w0, c0, bar)
                if self.delete_moves and self.weight_threshold != 0:
                    run = self._delete_moves(data, run, bar)
                run.full_bound = self._full_bound(data, run)
                if best is None or run.full_bound > best.full_bound:
                    best = run
        self._set_attributes(best)
        if not best.converged:
            warnings.warn(
                f"the best of n_init={self.n_init} initializations did not converge in max_iter={self.max_iter} "
                f"iterations (tol={self.tol:g}, weight_tol={self.weight_tol}); increase max_iter",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _set_attributes(self, run: _Run) -> None:
        self._weights_q, self._components_q = run.weights, run.components  # centered coordinates
        self._kept = run.kept
        full_w, full_c = self._full_prior
        self._prior_q = self._full_prior if run.kept is None else (_select(full_w, run.kept), _select(full_c, run.kept))
        self.elbo_, self.lower_bound_ = run.elbo, run.elbo[-1]
        self.converged_, self.n_iter_ = run.converged, run.n_iter
        self.n_features_in_ = self._shift.shape[0]
        self.n_components_ = int(run.weights.concentration.shape[0])
        self.posterior_ = run.components.translate(self._shift)
        self.weight_concentration_ = run.weights.concentration
        self.weights_ = run.weights.mean()
        self.counts_ = run.weights.concentration - self._prior_q[0].concentration
        self.means_ = self.posterior_.mean
        self.mean_precision_ = self.posterior_.mean_precision
        self.degrees_of_freedom_ = self.posterior_.df
        self.precisions_ = self.degrees_of_freedom_[:, None, None] * self.posterior_.scale()
        self.covariances_ = self.posterior_.inv_scale / self.degrees_of_freedom_[:, None, None]

    # ------------------------------------------------------------------ prediction
    def _data(self, X) -> GaussianData:
        if not hasattr(self, "posterior_"):
            raise RuntimeError("this BayesianGaussianMixture is not fitted yet; call fit first")
        x = as_data_matrix(X, dtype=self._shift.dtype, device=self._shift.device, n_features=self.n_features_in_)
        return GaussianData(x - self._shift)

    def predict_proba(self, X) -> Tensor:
        """Responsibilities :math:`r_{nk}` ``(N, K)`` under the fitted posterior (the CAVI E-step)."""
        return torch.softmax(self._logits(self._data(X), self._weights_q, self._components_q), dim=0).T

    def predict(self, X) -> Tensor:
        """Most responsible component ``(N,)`` (int64)."""
        return self._logits(self._data(X), self._weights_q, self._components_q).argmax(0)

    def fit_predict(self, X, y=None) -> Tensor:
        return self.fit(X).predict(X)

    def bound(self, X, *, unpruned: bool = False) -> float:
        """The ELBO per sample (nats) of ``X`` under the fitted global factors and priors, with optimal
        responsibilities; on the training data this is ``lower_bound_``.

        ``unpruned=True``: the bound of the same posterior as a member of the original ``n_components``
        model, each pruned component at its prior (:math:`q = p`, no points): comparable with fits that
        keep every component (scikit-learn's), and below ``lower_bound_`` by the pruned components' Occam
        factor."""
        data = self._data(X)
        w0, c0 = self._prior_q
        weights, comps = self._weights_q, self._components_q
        if unpruned and self._kept is not None:
            w0, c0 = self._full_prior
            weights, comps = _embed(weights, w0, self._kept), _embed(comps, c0, self._kept)
        return self._bound_of(data, weights, comps, w0, c0)

    def _bound_of(self, data: GaussianData, weights, comps, w0, c0) -> float:
        log_norm = torch.logsumexp(self._logits(data, weights, comps), dim=0)
        kl = weights.kl(w0).double() + comps.kl(c0).sum(dtype=torch.float64)
        return float((log_norm.sum(dtype=torch.float64) - kl) / data.n)

    def score_samples(self, X) -> Tensor:
        r"""Posterior predictive log density ``(N,)`` (nats), a Student-t mixture (Bishop 10.81):
        :math:`\log\sum_k \tfrac{\alpha_k}{\sum_j\alpha_j}\,\mathrm{St}(x \mid m_k, L_k, \nu_k + 1 - D)`,
        :math:`L_k = \tfrac{(\nu_k + 1 - D)\beta_k}{1 + \beta_k} W_k`."""
        data = self._data(X)
        q, d = self._components_q, data.dim
        dof = q.df + 1 - d
        scale = (dof * q.mean_precision / (1 + q.mean_precision))[:, None, None] * q.scale()
        m = q.mean
        # -1/2 (x - m)^T L (x - m) = -1/2 x^T L x + x^T L m - 1/2 m^T L m
        lm = (scale @ m[..., None]).squeeze(-1)
        half_maha = -data.quadratic(scale, lm, -0.5 * (m * lm).sum(-1))
        log_t = (
            torch.lgamma((dof + d) / 2)
            - torch.lgamma(dof / 2)
            + 0.5 * torch.linalg.slogdet(scale).logabsdet
            - 0.5 * d * torch.log(dof * math.pi)
            - 0.5 * (dof + d) * torch.log1p(2 * half_maha / dof)
        )
        return torch.logsumexp(log_t + self.weights_.log(), dim=-1)

    def score(self, X, y=None) -> float:
        """Mean posterior predictive log density per sample (nats)."""
        return float(self.score_samples(X).mean(dtype=torch.float64))
