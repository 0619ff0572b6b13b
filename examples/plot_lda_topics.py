"""
LDA topics on a shipped corpus
==============================

Latent Dirichlet allocation (Blei, Ng & Jordan 2003) by batch CAVI with
:class:`varinf.cavi.LatentDirichletAllocation`. The corpus is Reuters-395 from ``../shared/data/text``
(395 news stories); without that folder, a corpus is generated from an LDA model with known topics, so
the example still shows what the fit recovers.
"""

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp

from varinf.cavi import LatentDirichletAllocation

here = Path(__file__).resolve() if "__file__" in globals() else Path.cwd()
shared = os.environ.get("VARINF_SHARED_DATA") or next(
    (str(p / "shared" / "data") for p in here.parents if (p / "shared" / "data" / "text").is_dir()), None)

if shared is not None:
    from varinf.data.text import load_corpus

    corpus = load_corpus("reuters", shared)
    counts, vocabulary = corpus.counts, list(corpus.vocab)
    print(f"Reuters: {counts.shape[0]} documents, {counts.shape[1]} words, {corpus.n_tokens} tokens")
else:  # generate documents from 8 known topics over a 400-word vocabulary
    rng = np.random.default_rng(0)
    topics = rng.dirichlet(np.full(400, 0.05), size=8)
    theta = rng.dirichlet(np.full(8, 0.3), size=300)
    counts = sp.csr_matrix(np.stack([rng.multinomial(150, t @ topics) for t in theta]))
    vocabulary = [f"w{i}" for i in range(400)]
    print(f"generated corpus: {counts.shape[0]} documents, {counts.shape[1]} words")

# %%
# Fit on 90% of the documents; score the rest
# -------------------------------------------
# ``perplexity`` is exp(−bound per token) on held-out documents (an upper bound on the predictive
# perplexity); ``elbo_`` is the batch bound per token after each pass, which never decreases.
n_train = int(0.9 * counts.shape[0])
lda = LatentDirichletAllocation(n_components=8, max_iter=30, random_state=0).fit(counts[:n_train])
print(f"{lda.n_iter_} passes, converged {lda.converged_}; held-out perplexity {lda.perplexity(counts[n_train:]):.1f}")

# %%
top = lda.top_words(vocabulary, 8)
fig, axes = plt.subplots(2, 4, figsize=(12, 5.2))
beta = lda.components_.cpu().numpy()
beta = beta / beta.sum(1, keepdims=True)
for k, ax in enumerate(axes.flat):
    idx = np.argsort(beta[k])[::-1][:8]
    ax.barh(np.arange(8)[::-1], beta[k, idx], color=f"C{k}")
    ax.set_yticks(np.arange(8)[::-1], [vocabulary[i] for i in idx], fontsize=8)
    ax.set_title(f"topic {k}", fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
fig.suptitle("the eight words with the largest E[β] in each topic")
fig.tight_layout()

# %%
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(np.arange(1, len(lda.elbo_) + 1), np.asarray(lda.elbo_), "o-", ms=3)
ax.set_xlabel("pass")
ax.set_ylabel("ELBO per token (nats)")
ax.set_title("batch CAVI: the bound never decreases")
fig.tight_layout()
for k, words in enumerate(top):
    print(k, " ".join(words))
plt.show()
