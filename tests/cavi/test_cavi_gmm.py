"""Bayesian GMM by CAVI: exact evidence for K=1, monotone bound, recovery, pruning, scikit-learn agreement."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture as SkBGM

from varinf.cavi import BayesianGaussianMixture, ConjugateDirichlet, ConjugateNormalWishart
from varinf.cavi.gmm import _Run
from varinf.optim import ConvergenceWarning


def _blobs(n_per=200, sep=8.0, d=2, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = sep * np.eye(max(d, k))[:k, :d] if d >= k else rng.normal(0, sep, (k, d))
    labels = np.repeat(np.arange(k), n_per)
    scales = rng.uniform(0.5, 1.2, (k, d))
    x = centers[labels] + rng.normal(size=(k * n_per, d)) * scales[labels]
    return x, labels


def _log_evidence(x, m0, beta0, nu0, w0inv):
    """log p(X) of a single Gaussian with a Normal-Wishart prior (Murphy 2007, eq. 266), float64."""
    n, d = x.shape
    xbar = x.mean(0)
    s = (x - xbar).T @ (x - xbar)
    beta_n, nu_n = beta0 + n, nu0 + n
    diff = (xbar - m0)[:, None]
    wn_inv = w0inv + s + beta0 * n / beta_n * diff @ diff.T
    logdet = lambda a: float(torch.linalg.slogdet(a).logabsdet)
    return (
        -0.5 * n * d * math.log(math.pi)
        + 0.5 * d * (math.log(beta0) - math.log(beta_n))
        + 0.5 * nu0 * logdet(w0inv)
        - 0.5 * nu_n * logdet(wn_inv)
        + float(torch.mvlgamma(torch.tensor(nu_n / 2, dtype=torch.float64), d))
        - float(torch.mvlgamma(torch.tensor(nu0 / 2, dtype=torch.float64), d))
    )


PRIOR = {"mean_prior": [0.5, -1.0, 0.0], "mean_precision_prior": 0.7, "degrees_of_freedom_prior": 4.5}


def test_single_component_bound_is_the_exact_log_evidence_and_predictive():
    """With K = 1 the mean-field posterior is exact, so ELBO = log p(X) and score_samples = log p(x|X)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64) @ torch.tensor(
        [[1.0, 0.3, 0], [0, 2.0, 0.5], [0, 0, 0.7]], dtype=torch.float64
    )
    w0inv = torch.tensor([[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 0.5]], dtype=torch.float64)
    gmm = BayesianGaussianMixture(1, covariance_prior=w0inv.numpy(), max_iter=3, tol=0, **PRIOR)
    with pytest.warns(ConvergenceWarning):
        gmm.fit(x)
    m0 = torch.tensor(PRIOR["mean_prior"], dtype=torch.float64)
    ev = _log_evidence(x, m0, 0.7, 4.5, w0inv)
    assert gmm.lower_bound_ * len(x) == pytest.approx(ev, rel=1e-10)
    assert gmm.bound(x) == pytest.approx(gmm.lower_bound_, rel=1e-12)
    new = torch.randn(4, 3, generator=g, dtype=torch.float64)
    exact = [_log_evidence(torch.cat([x, p[None]]), m0, 0.7, 4.5, w0inv) - ev for p in new]
    assert torch.allclose(gmm.score_samples(new), torch.tensor(exact, dtype=torch.float64), atol=1e-9)


@pytest.mark.parametrize("weight_threshold", [0.0, None], ids=["no-pruning", "pruning"])
def test_bound_never_decreases_every_iteration(weight_threshold):
    """CAVI steps are exact coordinate maximizations; pruning an emptied component (prior included) raises the
    bound too (the smaller model's Occam factor), so the recorded bound never decreases across prunes either."""
    x, _ = _blobs(n_per=150, sep=3.0, k=4, d=3, seed=1)  # overlapping: many iterations
    for init in ("random", "kmeans"):
        gmm = BayesianGaussianMixture(6, init_params=init, tol=0, max_iter=60, random_state=0, dtype=torch.float64,
                                      weight_threshold=weight_threshold)  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gmm.fit(x)
        elbo = np.asarray(gmm.elbo_)
        assert len(elbo) == 61 and gmm.n_iter_ == 60
        assert np.all(np.diff(elbo) >= -1e-10 * np.abs(elbo[1:])), np.diff(elbo).min()
        assert elbo[-1] > elbo[0]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_recovers_separated_clusters_and_prunes_the_rest(dtype):
    x, labels = _blobs(n_per=200, sep=10.0, k=3, d=3, seed=2)
    gmm = BayesianGaussianMixture(8, random_state=0, dtype=dtype).fit(x)
    assert gmm.converged_ and gmm.means_.dtype == dtype
    assert adjusted_rand_score(labels, gmm.predict(x).numpy()) >= 0.95
    # the 5 surplus components are pruned: every learned attribute has one row per remaining component
    assert gmm.n_components_ == 3 and gmm.weights_.shape == (3,) and gmm.means_.shape == (3, 3)
    assert gmm.covariances_.shape == (3, 3, 3) and gmm.predict_proba(x).shape == (len(x), 3)
    assert float(gmm.weights_.sum()) == pytest.approx(1.0) and float(gmm.counts_.sum()) == pytest.approx(len(x))
    assert gmm.bound(x) == pytest.approx(gmm.lower_bound_, abs=1e-5)
    proba = gmm.predict_proba(x)
    assert torch.allclose(proba.sum(-1), torch.ones(len(x), dtype=dtype), atol=1e-5)
    # learned means sit on the true centers
    true = torch.as_tensor(np.stack([x[labels == k].mean(0) for k in range(3)]), dtype=dtype)
    err = torch.cdist(true, gmm.means_).min(-1).values
    assert float(err.max()) < 0.2


def _from_sklearn(model: BayesianGaussianMixture, sk: SkBGM) -> BayesianGaussianMixture:
    """Load scikit-learn's variational posterior into a fitted model of ours (same priors)."""
    f = lambda a: torch.as_tensor(a, dtype=torch.float64)
    nu = f(sk.degrees_of_freedom_)
    comps = ConjugateNormalWishart.from_moments(
        f(sk.means_) - model._shift, f(sk.mean_precision_), nu, f(sk.covariances_) * nu[:, None, None]
    )
    model._set_attributes(_Run(ConjugateDirichlet(f(sk.weight_concentration_)), comps, [math.nan], True, 0))
    return model


def _sklearn(x, k, seed, tol, max_iter=1000):
    return SkBGM(
        n_components=k,
        weight_concentration_prior_type="dirichlet_distribution",
        reg_covar=0.0,
        tol=tol * len(x),  # sklearn's tol is on the total bound (an absolute one)
        max_iter=max_iter,
        random_state=seed,
    ).fit(x)


def _scorer(x, k):
    """A model holding the priors scikit-learn uses for x (they depend only on the data)."""
    model = BayesianGaussianMixture(k, max_iter=0, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x)


def test_agrees_with_sklearn_from_the_same_start():
    """Same priors, the same k-means start and the same number of iterations (no stopping rule, no pruning):
    the same CAVI path, hence the same posterior and full ELBO."""
    x, _ = _blobs(n_per=150, sep=3.0, k=4, d=3, seed=1)  # overlapping clusters: > 100 iterations to converge
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both warn that 150 iterations did not converge (tol=0)
        sk = _sklearn(x, 6, seed=1, tol=0, max_iter=150)
        labels = KMeans(6, n_init=1, random_state=np.random.RandomState(1)).fit(x).labels_  # sklearn's own init
        ours = BayesianGaussianMixture(6, resp_init=labels, tol=0, max_iter=150, weight_threshold=0,
                                       dtype=torch.float64).fit(x)  # fmt: skip
    assert ours.n_iter_ == sk.n_iter_ == 150
    assert ours.lower_bound_ == pytest.approx(_from_sklearn(_scorer(x, 6), sk).bound(x), abs=1e-9)
    assert np.allclose(ours.means_.numpy(), sk.means_, atol=1e-5)
    assert np.allclose(ours.weights_.numpy(), sk.weights_, atol=1e-7)


def test_agrees_with_sklearn_from_own_initialization():
    """Each with its own k-means on separated clusters: same partition and ELBO within 1e-6 nats/point (the
    same 5-component model: no pruning)."""
    x, _ = _blobs(n_per=150, sep=6.0, k=3, d=2, seed=3)
    ours = BayesianGaussianMixture(5, random_state=0, tol=1e-9, weight_threshold=0, dtype=torch.float64).fit(x)
    sk = _sklearn(x, 5, seed=0, tol=1e-8)
    assert adjusted_rand_score(sk.predict(x), ours.predict(x).numpy()) >= 0.99
    assert ours.lower_bound_ == pytest.approx(_from_sklearn(_scorer(x, 5), sk).bound(x), abs=1e-6)


def test_n_init_keeps_the_best_bound():
    x, _ = _blobs(n_per=100, sep=3.0, k=4, d=2, seed=4)
    kw = {"init_params": "random", "max_iter": 200, "random_state": 7, "dtype": torch.float64}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = BayesianGaussianMixture(6, n_init=1, **kw).fit(x)
        three = BayesianGaussianMixture(6, n_init=3, **kw).fit(x)
    assert three.lower_bound_ >= one.lower_bound_ - 1e-12


def test_convergence_warning_and_validation_errors():
    x, _ = _blobs(n_per=20, k=2, d=2)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        BayesianGaussianMixture(2, max_iter=1, tol=0, random_state=0).fit(x)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        BayesianGaussianMixture(2).fit(bad)
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        BayesianGaussianMixture(2).fit(bad)
    with pytest.raises(ValueError, match="2-D"):
        BayesianGaussianMixture(2).fit(x[:, 0])
    with pytest.raises(ValueError, match="fewer than n_components"):
        BayesianGaussianMixture(50).fit(x)
    with pytest.raises(ValueError, match="n_components"):
        BayesianGaussianMixture(0).fit(x)
    with pytest.raises(ValueError, match="init_params"):
        BayesianGaussianMixture(2, init_params="spectral").fit(x)
    with pytest.raises(ValueError, match="degrees_of_freedom_prior"):
        BayesianGaussianMixture(2, degrees_of_freedom_prior=0.5).fit(x)
    with pytest.raises(ValueError, match="positive definite"):
        BayesianGaussianMixture(2, covariance_prior=[[1.0, 2.0], [2.0, 1.0]]).fit(x)
    with pytest.raises(ValueError, match="resp_init"):
        BayesianGaussianMixture(2, resp_init=np.full(len(x), 5)).fit(x)
    with pytest.raises(ValueError, match="n_init=1"):
        BayesianGaussianMixture(2, resp_init=np.zeros(len(x), dtype=int), n_init=2).fit(x)
    with pytest.raises(RuntimeError, match="not fitted"):
        BayesianGaussianMixture(2).predict(x)
    gmm = BayesianGaussianMixture(2, random_state=0).fit(x)
    with pytest.raises(ValueError, match="3 features but the model was fitted with 2"):
        gmm.predict(np.zeros((4, 3)))


def _four_blobs(n=3000, seed=0):
    """The case of issue 24: 4 well-separated, equally weighted unit blobs in 3-D (17 sds apart)."""
    rng = np.random.default_rng(seed)
    centers = 6.0 * np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]])
    labels = rng.integers(0, 4, n)
    return centers[labels] + rng.normal(size=(n, 3)), labels


def test_defaults_find_the_true_number_of_components_as_sklearn_does():
    """With every default (10 components), the fit reaches the optimum and keeps the 4 blobs, as scikit-learn's
    defaults do; in the same 10-component model its bound is at least scikit-learn's. The old rule (an absolute
    1e-3 nats/point on the bound alone) stopped after 9 iterations with all 10 components at weights 0.05-0.14."""
    x, labels = _four_blobs()
    ours = BayesianGaussianMixture(10, random_state=0).fit(x)
    assert ours.converged_ and ours.n_components_ == 4
    assert torch.allclose(ours.weights_.sort().values, torch.full((4,), 0.25, dtype=ours.weights_.dtype), atol=0.02)
    assert adjusted_rand_score(labels, ours.predict(x).numpy()) > 0.99
    sk = SkBGM(n_components=10, random_state=0).fit(x)  # scikit-learn's defaults (a Dirichlet process)
    assert int((sk.weights_ > 0.01).sum()) == 4
    # scikit-learn's defaults with our model (finite Dirichlet weights) stop with one blob still split in two
    same_model = SkBGM(n_components=10, weight_concentration_prior_type="dirichlet_distribution", random_state=0).fit(x)
    sk_bound = _from_sklearn(_scorer(x, 10), same_model).bound(x)
    assert ours.bound(x, unpruned=True) >= sk_bound - 1e-6
    # pruning removed 6 empty components and their prior: the bound of the smaller model is higher
    assert ours.lower_bound_ > ours.bound(x, unpruned=True)


def test_pruning_changes_nothing_but_the_empty_components():
    """A pruned and an unpruned fit from the same start reach the same clusters; the pruned posterior put
    back into the 10-component model (pruned components at their prior) scores the unpruned fit's bound."""
    x, _ = _four_blobs(n=1200, seed=1)
    kw = {"random_state": 3, "dtype": torch.float64, "tol": 1e-10, "weight_tol": 1e-8}
    pruned = BayesianGaussianMixture(10, **kw).fit(x)
    kept = BayesianGaussianMixture(10, weight_threshold=0, **kw).fit(x)
    assert pruned.n_components_ == 4 and kept.n_components_ == 10
    live = kept.weights_ > 0.01
    assert torch.allclose(pruned.means_[pruned.means_[:, 0].argsort()],
                          kept.means_[live][kept.means_[live][:, 0].argsort()], atol=1e-6)  # fmt: skip
    assert pruned.bound(x, unpruned=True) == pytest.approx(kept.lower_bound_, abs=1e-6)
    assert pruned.bound(x) == pytest.approx(pruned.lower_bound_, abs=1e-10)


def test_delete_moves_escape_a_stall_and_never_lower_the_bound():
    """Wine (178 points, 13-D), 10 components: plain CAVI stalls with every component holding a few points;
    delete moves end with fewer components and a bound at least 0.5 nats/point higher in the same model."""
    from sklearn.datasets import load_wine

    x = load_wine().data
    x = (x - x.mean(0)) / x.std(0)
    for seed in (0, 1):
        plain = BayesianGaussianMixture(10, random_state=seed, delete_moves=False).fit(x)
        moved = BayesianGaussianMixture(10, random_state=seed).fit(x)
        assert plain.n_components_ >= 9 and moved.n_components_ <= 4
        assert moved.bound(x, unpruned=True) > plain.bound(x, unpruned=True) + 0.5
