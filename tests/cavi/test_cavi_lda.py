"""LDA by batch CAVI and online VI: exact E-step, monotone bound, planted topics, scikit-learn agreement."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import LatentDirichletAllocation as SkLDA

from varinf.cavi import ConjugateDirichlet, DocTermCounts, LatentDirichletAllocation, RobbinsMonro, lda_e_step
from varinf.optim import ConvergenceWarning

F64 = {"dtype": torch.float64}


def _planted(n_docs=200, k=4, block=10, doc_len=80, alpha=0.3, seed=0):
    """Documents from k topics, topic j concentrated on words [j*block, (j+1)*block)."""
    rng = np.random.default_rng(seed)
    v = k * block
    topics = np.full((k, v), 0.002)
    for j in range(k):
        topics[j, j * block : (j + 1) * block] += rng.dirichlet(np.full(block, 5.0))
    topics /= topics.sum(1, keepdims=True)
    theta = rng.dirichlet(np.full(k, alpha), n_docs)
    return rng.multinomial(doc_len, theta @ topics), topics


def _topic_error(model, topics) -> float:
    """Largest total-variation distance between matched learned and true topics."""
    learned = model.topic_word_distribution_.double().numpy()
    tv = 0.5 * np.abs(learned[:, None] - topics[None]).sum(-1)
    rows, cols = linear_sum_assignment(tv)
    return float(tv[rows, cols].max())


def _reference_e_step(x, elog_beta, alpha, tol, max_iter):
    """Per-document loop (Hoffman et al. 2010 / scikit-learn), float64 numpy."""
    eb = np.exp(elog_beta)
    k = eb.shape[0]
    gamma, stats = np.ones((len(x), k)), np.zeros_like(eb)
    psi = lambda g: torch.digamma(torch.as_tensor(g)).numpy()
    for d, row in enumerate(x):
        ids = np.nonzero(row)[0]
        cnts, ebd = row[ids].astype(float), eb[:, ids]
        g = gamma[d]
        et = np.exp(psi(g) - psi(g.sum()))
        for _ in range(max_iter):
            last = g
            g = alpha + et * ((cnts / (et @ ebd)) @ ebd.T)
            et = np.exp(psi(g) - psi(g.sum()))
            if np.abs(last - g).mean() < tol:
                break
        gamma[d] = g
        stats[:, ids] += np.outer(et, cnts / (et @ ebd))
    return gamma, stats * eb


def test_vectorized_e_step_matches_per_document_loop_and_explicit_bound():
    x, _ = _planted(n_docs=30, seed=1)
    x[3] = 0  # an empty document
    rng = np.random.default_rng(0)
    lam = rng.gamma(100.0, 0.01, (4, x.shape[1])) + np.arange(x.shape[1]) % 7
    topics = ConjugateDirichlet(torch.as_tensor(lam))
    elog_beta = topics.expected_stats()
    counts = DocTermCounts.from_matrix(x, dtype=torch.float64)
    out = lda_e_step(counts, topics, torch.tensor(0.25, **F64), torch.ones(30, 4, **F64), tol=1e-12, max_iter=2000)
    gamma, stats = _reference_e_step(x, elog_beta.numpy(), 0.25, 1e-12, 2000)
    assert np.allclose(out.gamma.numpy(), gamma, rtol=1e-9)
    assert np.allclose(out.topic_word_stats.numpy(), stats, rtol=1e-9, atol=1e-12)
    assert np.allclose(out.gamma[3].numpy(), 0.25)
    # the bound with explicit phi: sum n phi (Elog theta + Elog beta - log phi) - KL(q(theta) || p(theta))
    elog_theta = ConjugateDirichlet(out.gamma).expected_stats()
    logits = elog_theta[:, :, None] + elog_beta[None]  # (D, K, V)
    phi = torch.softmax(logits, dim=1)
    xt = torch.as_tensor(x, **F64)[:, None, :]
    explicit = (xt * phi * (logits - torch.log(phi))).sum()
    prior = torch.distributions.Dirichlet(torch.full((4,), 0.25, **F64))
    explicit -= torch.distributions.kl_divergence(torch.distributions.Dirichlet(out.gamma), prior).sum()
    assert float(out.bound) == pytest.approx(float(explicit), rel=1e-10)


def test_e_step_keeps_the_better_of_fresh_and_previous_gamma():
    x, _ = _planted(n_docs=40, seed=8)
    topics = ConjugateDirichlet(torch.as_tensor(np.random.default_rng(1).gamma(1.0, 1.0, (4, x.shape[1]))))
    counts = DocTermCounts.from_matrix(x, dtype=torch.float64)
    alpha, ones = torch.tensor(0.3, **F64), torch.ones(40, 4, **F64)
    fresh = lda_e_step(counts, topics, alpha, ones, max_iter=3)  # deliberately unconverged
    previous = lda_e_step(counts, topics, alpha, ones, max_iter=200).gamma
    previous[::2] = 5.0  # a poor previous gamma for half of the documents
    guarded = lda_e_step(counts, topics, alpha, ones, max_iter=3, previous=previous)
    scored = lda_e_step(counts, topics, alpha, previous, max_iter=0)
    assert torch.allclose(guarded.doc_bound, torch.maximum(fresh.doc_bound, scored.doc_bound))
    assert torch.equal(guarded.gamma[::2], fresh.gamma[::2]) and bool((guarded.doc_bound >= fresh.doc_bound).all())
    # the statistics follow the chosen gamma
    assert torch.allclose(
        guarded.topic_word_stats, lda_e_step(counts, topics, alpha, guarded.gamma, max_iter=0).topic_word_stats
    )


@pytest.mark.parametrize("solver", ["squarem", "fixed_point"])
def test_batch_bound_never_decreases_every_iteration(solver):
    x, _ = _planted(n_docs=150, seed=2)
    kw = {"tol": 0, "random_state": 0, "local_solver": solver}
    lda = LatentDirichletAllocation(6, max_iter=40, dtype=torch.float64, **kw)
    with pytest.warns(ConvergenceWarning):
        lda.fit(x)
    elbo = np.asarray(lda.elbo_)
    assert len(elbo) == 41 and lda.n_iter_ == 40
    assert np.all(np.diff(elbo) >= -1e-12 * np.abs(elbo[1:])), np.diff(elbo).min()
    assert elbo[-1] > elbo[0] + 0.1
    # float32 follows the same path
    lda32 = LatentDirichletAllocation(6, max_iter=40, dtype=torch.float32, **kw)
    with pytest.warns(ConvergenceWarning):
        lda32.fit(x)
    assert lda32.components_.dtype == torch.float32
    assert lda32.bound_ == pytest.approx(lda.bound_, rel=1e-4)


def test_batch_recovers_planted_topics_and_converges():
    x, topics = _planted(seed=3)
    lda = LatentDirichletAllocation(4, max_iter=200, tol=1e-6, random_state=0, dtype=torch.float64).fit(x)
    assert lda.converged_
    assert _topic_error(lda, topics) < 0.1
    vocab = [f"w{i}" for i in range(x.shape[1])]
    for words in lda.top_words(vocab, n=5):  # each topic's top words lie inside one planted block
        assert len({int(w[1:]) // 10 for w in words}) == 1
    theta = lda.transform(x)
    assert torch.allclose(theta.sum(-1), torch.ones(len(x), **F64))


def test_online_fit_and_partial_fit_recover_planted_topics():
    x, topics = _planted(n_docs=240, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        online = LatentDirichletAllocation(
            4, learning_method="online", batch_size=40, max_iter=8, tol=0, random_state=0, dtype=torch.float64
        ).fit(x)
    assert online.n_batch_iter_ == 8 * 6 and len(online.elbo_) == 8
    assert _topic_error(online, topics) < 0.15
    stream = LatentDirichletAllocation(4, batch_size=40, total_samples=len(x), random_state=0, dtype=torch.float64)
    for _ in range(8):
        stream.partial_fit(x)
    assert stream.n_batch_iter_ == 8 * 6
    assert _topic_error(stream, topics) < 0.15


def _load_components(model: LatentDirichletAllocation, components, alpha, eta) -> LatentDirichletAllocation:
    model.components_ = torch.as_tensor(components, **F64)
    model.doc_topic_prior_, model.topic_word_prior_ = alpha, eta
    model.n_features_in_ = components.shape[1]
    return model


def test_agrees_with_sklearn_lda():
    x, _ = _planted(n_docs=240, seed=5)
    train, test = x[:200], x[200:]
    kw = {"doc_topic_prior": 0.3, "topic_word_prior": 0.05}
    sk = SkLDA(4, learning_method="batch", max_iter=30, random_state=0, **kw).fit(train)
    # (1) the same topics give the same bound and document-topic proportions (E-steps run to convergence)
    sk.set_params(mean_change_tol=1e-10, max_doc_update_iter=1000)
    same = LatentDirichletAllocation(4, mean_change_tol=1e-10, max_doc_update_iter=1000, **kw)
    _load_components(same, sk.components_, 0.3, 0.05)
    assert same.score(test) == pytest.approx(sk.score(test), rel=1e-8)
    assert np.allclose(same.transform(test).numpy(), sk.transform(test), atol=1e-7)
    # (2) fitted from scratch with the same priors (best training bound of 3 seeds, as LDA has local
    # optima): held-out perplexity within 2% of scikit-learn's topics
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits = [
            LatentDirichletAllocation(4, max_iter=30, random_state=s, dtype=torch.float64, **kw).fit(train)
            for s in range(3)
        ]
    ours = max(fits, key=lambda m: m.bound_)
    assert ours.perplexity(test) == pytest.approx(same.perplexity(test), rel=0.02)


def test_sparse_inputs_match_dense():
    x, _ = _planted(n_docs=60, seed=6)
    lda = LatentDirichletAllocation(4, max_iter=5, random_state=0, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lda.fit(sp.csr_matrix(x))
    dense = lda.transform(x)
    assert torch.allclose(lda.transform(sp.coo_matrix(x)), dense)
    assert torch.allclose(lda.transform(torch.as_tensor(x).to_sparse()), dense)
    assert torch.allclose(lda.transform(torch.as_tensor(x).to_sparse_csr()), dense)
    counts = DocTermCounts.from_matrix(x)
    pick = torch.tensor([5, 2, 40])
    sub = counts.select(pick)
    back = torch.zeros(3, x.shape[1], dtype=sub.count.dtype).index_put_((sub.doc, sub.word), sub.count)
    assert torch.equal(back, torch.as_tensor(x[[5, 2, 40]], dtype=back.dtype))


def test_step_schedule():
    rm = RobbinsMonro(offset=10.0, decay=0.7)
    assert rm(1) == pytest.approx(11.0**-0.7)
    assert rm(5) < rm(4)
    with pytest.raises(ValueError, match="learning_decay"):
        RobbinsMonro(decay=0.4)
    with pytest.raises(ValueError, match="numbered from 1"):
        rm(0)


def test_validation_errors():
    x, _ = _planted(n_docs=20, seed=7)
    bad = x.astype(float)
    bad[2, 3] = -1
    with pytest.raises(ValueError, match="negative counts"):
        LatentDirichletAllocation(3).fit(bad)
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LatentDirichletAllocation(3).fit(bad)
    with pytest.raises(ValueError, match="negative"):
        LatentDirichletAllocation(3).fit(sp.csr_matrix(-x))
    with pytest.raises(ValueError, match="2-D"):
        LatentDirichletAllocation(3).fit(x[0])
    with pytest.raises(ValueError, match="could not be read"):
        LatentDirichletAllocation(3).fit([["a", "b"]])
    with pytest.raises(ValueError, match="learning_method"):
        LatentDirichletAllocation(3, learning_method="gibbs").fit(x)
    with pytest.raises(ValueError, match="learning_decay"):
        LatentDirichletAllocation(3, learning_decay=1.5).fit(x)
    with pytest.raises(ValueError, match="n_components"):
        LatentDirichletAllocation(0).fit(x)
    with pytest.raises(ValueError, match="local_solver"):
        LatentDirichletAllocation(3, local_solver="newton").fit(x)
    with pytest.raises(ValueError, match="callback"):
        LatentDirichletAllocation(3, callback="print").fit(x)
    with pytest.raises(RuntimeError, match="not fitted"):
        LatentDirichletAllocation(3).transform(x)
    lda = LatentDirichletAllocation(3, max_iter=2, random_state=0)
    with pytest.warns(ConvergenceWarning):
        lda.fit(x)
    with pytest.raises(ValueError, match="has 39 words"):
        lda.transform(x[:, :-1])
    with pytest.raises(ValueError, match="no tokens"):
        lda.perplexity(np.zeros((2, x.shape[1])))
    with pytest.raises(ValueError, match="vocab"):
        lda.top_words(["a", "b"])
