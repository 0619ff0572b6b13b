"""``varinf cavi gmm|lda``: fit a Bayesian Gaussian mixture or an LDA topic model by CAVI / stochastic VI.

varinf cavi gmm points.csv --components 10              # .csv/.txt (numbers) or .npy, rows = points
varinf cavi lda reuters --topics 10 --data-root ../shared/data
varinf cavi lda my_docs.txt --topics 20 --method online # one document per line
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..utils import atomic_write_text

__all__ = ["read_matrix", "register", "run_gmm", "run_lda"]


def read_matrix(path: str):
    """A 2-D float array from ``.npy`` or delimited text (comma/whitespace; one header line is skipped)."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if p.suffix == ".npy":
        try:
            return np.load(p, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise ValueError(f"{path}: not a readable .npy array ({e})") from None
    with open(p, encoding="utf-8", errors="replace") as f:
        first = f.readline()
    delimiter = "," if "," in first else None
    try:
        float(first.replace(",", " ").split()[0])
        skip = 0
    except (ValueError, IndexError):
        skip = 1  # a header line
    try:
        return np.loadtxt(p, delimiter=delimiter, skiprows=skip, ndmin=2)
    except ValueError as e:
        raise ValueError(f"{path}: could not parse numbers ({e})") from None


def _write_atomic(path: str, text: str, force: bool) -> None:
    target = Path(path)
    if target.exists() and not force:
        raise ValueError(f"{path} exists; pass --force to overwrite")
    atomic_write_text(target, text, overwrite=force)


def run_gmm(args: argparse.Namespace) -> int:
    import torch

    from ..cavi import BayesianGaussianMixture

    x = read_matrix(args.data)
    gmm = BayesianGaussianMixture(
        args.components,
        tol=args.tol,
        max_iter=args.max_iter,
        n_init=args.n_init,
        random_state=args.seed,
        dtype=torch.float32 if args.float32 else torch.float64,
        progress=False if args.no_progress else None,
    ).fit(x)
    n, d = x.shape
    print(f"Bayesian GMM (CAVI): {n} points, {d} features, {args.components} components")
    state = "converged" if gmm.converged_ else "NOT converged"
    print(f"{state} after {gmm.n_iter_} iterations; ELBO {gmm.lower_bound_:.4f} nats/point")
    active = (gmm.weights_ > args.min_weight).nonzero().squeeze(-1).tolist()
    print(f"{len(active)} components with weight > {args.min_weight:g}:")
    for k in sorted(active, key=lambda k: -float(gmm.weights_[k])):
        mean = ", ".join(f"{v:.3g}" for v in gmm.means_[k].tolist()[:6]) + (", ..." if d > 6 else "")
        print(f"  [{k}] weight {float(gmm.weights_[k]):.3f}  mean ({mean})")
    if args.output:
        labels = gmm.predict(x).tolist()
        _write_atomic(args.output, "".join(f"{v}\n" for v in labels), args.force)
        print(f"labels written to {args.output}")
    return 0


def run_lda(args: argparse.Namespace) -> int:
    import torch

    from ..cavi import LatentDirichletAllocation
    from ..data.text import load_corpus

    corpus = load_corpus(args.corpus, args.data_root, min_df=args.min_df, max_df=args.max_df)
    train, test = corpus.split(args.test_fraction, seed=args.seed) if args.test_fraction > 0 else (corpus, None)
    lda = LatentDirichletAllocation(
        args.topics,
        doc_topic_prior=args.alpha,
        topic_word_prior=args.eta,
        learning_method=args.method,
        batch_size=args.batch_size,
        max_iter=args.max_iter,
        tol=args.tol,
        random_state=args.seed,
        dtype=torch.float64 if args.float64 else torch.float32,
        progress=False if args.no_progress else None,
    ).fit(train.counts)
    print(f"LDA ({args.method}): {train!r} for training, {args.topics} topics")
    state = "converged" if lda.converged_ else "NOT converged"
    print(f"{state} after {lda.n_iter_} passes; ELBO {lda.bound_:.4f} nats/token")
    for k, words in enumerate(lda.top_words(corpus.vocab, args.top)):
        print(f"  topic {k:2d}: {' '.join(words)}")
    if test is not None and test.n_tokens > 0:
        print(f"held-out perplexity ({test.n_docs} docs, {test.n_tokens} tokens): {lda.perplexity(test.counts):.1f}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("cavi", help="CAVI / stochastic VI for conjugate models: Bayesian GMM, LDA")
    models = p.add_subparsers(dest="model", metavar="MODEL", required=True)

    g = models.add_parser("gmm", help="Bayesian Gaussian mixture on a .csv/.txt/.npy matrix (rows = points)")
    g.add_argument("data", help="numeric matrix file")
    g.add_argument("--components", type=int, default=10, help="upper bound on the number of components")
    g.add_argument("--max-iter", type=int, default=500)
    g.add_argument("--tol", type=float, default=1e-4, help="change of the ELBO per point (nats) to stop")
    g.add_argument("--n-init", type=int, default=1, help="restarts; the best ELBO is kept")
    g.add_argument("--min-weight", type=float, default=0.01, help="report components above this weight")
    g.add_argument("--output", help="write the predicted component of each point here (one per line)")
    g.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    g.add_argument("--float32", action="store_true", help="compute in float32 (default float64)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--no-progress", action="store_true")
    g.set_defaults(func=run_gmm)

    lda = models.add_parser("lda", help="LDA topic model on a named corpus or a corpus file")
    lda.add_argument("corpus", help="reuters | lee | lee_test | mini_newsgroups | news100 | news, or a file")
    lda.add_argument("--data-root", default=os.environ.get("VARINF_SHARED_DATA", "../shared/data"))
    lda.add_argument("--topics", type=int, default=10)
    lda.add_argument("--method", choices=["batch", "online"], default="batch")
    lda.add_argument("--alpha", type=float, default=None, help="document-topic prior (default 1/topics)")
    lda.add_argument("--eta", type=float, default=None, help="topic-word prior (default 1/topics)")
    lda.add_argument("--max-iter", type=int, default=100, help="passes over the corpus")
    lda.add_argument("--tol", type=float, default=1e-4, help="change of the ELBO per token (nats) to stop")
    lda.add_argument("--batch-size", type=int, default=128, help="documents per minibatch (online)")
    lda.add_argument("--test-fraction", type=float, default=0.1, help="held out for perplexity (0 = none)")
    lda.add_argument("--min-df", type=int, default=2, help="raw text: keep words in at least this many docs")
    lda.add_argument("--max-df", type=float, default=0.5, help="raw text: drop words in more than this fraction")
    lda.add_argument("--top", type=int, default=10, help="words shown per topic")
    lda.add_argument("--float64", action="store_true", help="compute in float64 (default float32)")
    lda.add_argument("--seed", type=int, default=0)
    lda.add_argument("--no-progress", action="store_true")
    lda.set_defaults(func=run_lda)
