"""``varinf cavi gmm|lda``: fit a Bayesian Gaussian mixture or an LDA topic model by CAVI / stochastic VI.

varinf cavi gmm points.csv --components 10 -o labels.txt  # .csv/.txt (numbers) or .npy, rows = points
varinf cavi lda reuters --topics 10 --data-root ../shared/data
varinf cavi lda my_docs.txt --topics 20 --method online   # one document per line
"""

from __future__ import annotations

import argparse
import os

from .options import add_dtype, add_output, add_reporting, add_seed, dtype_of, emit, integer, number, progress_of
from .paths import check_outputs, input_file, writing

__all__ = ["read_matrix", "register", "run_gmm", "run_lda"]


def read_matrix(path: str):
    """A 2-D float array from ``.npy`` or delimited text (comma/whitespace; one header line is skipped)."""
    import numpy as np

    p = input_file(path)
    if p.suffix == ".npy":
        try:
            return np.load(p, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise ValueError(f"{path}: not a readable .npy array ({e})") from None
    with open(p, encoding="utf-8", errors="replace") as f:
        first = f.readline()
        if not first.strip() and not f.read(4096).strip():
            raise ValueError(f"{path}: no numbers in it")
    delimiter = "," if "," in first else None
    try:
        float(first.replace(",", " ").split()[0])
        skip = 0
    except (ValueError, IndexError):
        skip = 1  # a header line
    try:
        x = np.loadtxt(p, delimiter=delimiter, skiprows=skip, ndmin=2)
    except ValueError as e:
        raise ValueError(f"{path}: could not parse numbers ({e})") from None
    if x.size == 0:
        raise ValueError(f"{path}: no numbers in it")
    return x


def run_gmm(args: argparse.Namespace) -> int:
    from ..cavi import BayesianGaussianMixture

    outputs = [] if args.output is None else check_outputs([args.output], inputs=[args.data], force=args.force)
    x = read_matrix(args.data)
    gmm = BayesianGaussianMixture(
        args.components,
        tol=args.tol,
        weight_threshold=args.weight_threshold,
        max_iter=args.max_iter,
        n_init=args.n_init,
        random_state=args.seed,
        dtype=dtype_of(args),
        progress=progress_of(args),
    ).fit(x)
    n, d = x.shape
    active = sorted(range(gmm.n_components_), key=lambda k: -float(gmm.weights_[k]))
    pruned = args.components - gmm.n_components_
    lines = [
        f"Bayesian GMM (CAVI): {n} points, {d} features, at most {args.components} components",
        f"{'converged' if gmm.converged_ else 'NOT converged'} after {gmm.n_iter_} iterations; "
        f"ELBO {gmm.lower_bound_:.4f} nats/point",
        f"{gmm.n_components_} components" + (f" ({pruned} surplus ones removed):" if pruned else ":"),
    ]
    for k in active:
        mean = ", ".join(f"{v:.3g}" for v in gmm.means_[k].tolist()[:6]) + (", ..." if d > 6 else "")
        lines.append(f"  [{k}] weight {float(gmm.weights_[k]):.3f}  mean ({mean})")
    record = {"points": n, "features": d, "converged": bool(gmm.converged_), "n_iter": gmm.n_iter_,
              "elbo_per_point": gmm.lower_bound_, "components": gmm.n_components_, "weights": gmm.weights_,
              "means": gmm.means_}  # fmt: skip
    if outputs:
        labels = gmm.predict(x).tolist()
        with writing(outputs, force=args.force) as (tmp,):
            tmp.write_text("".join(f"{v}\n" for v in labels), encoding="utf-8")
        lines.append(f"labels written to {args.output}")
        record["labels_file"] = args.output
    emit(args, "\n".join(lines), record)
    return 0


def run_lda(args: argparse.Namespace) -> int:
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
        dtype=dtype_of(args),
        progress=progress_of(args),
    ).fit(train.counts)
    topics = lda.top_words(corpus.vocab, args.top)
    lines = [
        f"LDA ({args.method}): {train!r} for training, {args.topics} topics",
        f"{'converged' if lda.converged_ else 'NOT converged'} after {lda.n_iter_} passes; "
        f"ELBO {lda.bound_:.4f} nats/token",
        *(f"  topic {k:2d}: {' '.join(words)}" for k, words in enumerate(topics)),
    ]
    record = {"method": args.method, "topics": [list(w) for w in topics], "converged": bool(lda.converged_),
              "n_iter": lda.n_iter_, "elbo_per_token": lda.bound_}  # fmt: skip
    if test is not None and test.n_tokens > 0:
        record["held_out_perplexity"] = perplexity = lda.perplexity(test.counts)
        lines.append(f"held-out perplexity ({test.n_docs} docs, {test.n_tokens} tokens): {perplexity:.1f}")
    emit(args, "\n".join(lines), record)
    return 0


def register(sub) -> None:
    p = sub.add_parser("cavi", help="CAVI / stochastic VI for conjugate models: Bayesian GMM, LDA")
    models = p.add_subparsers(dest="model", metavar="MODEL", required=True)

    g = models.add_parser("gmm", help="Bayesian Gaussian mixture on a .csv/.txt/.npy matrix (rows = points)")
    g.add_argument("data", help="numeric matrix file")
    g.add_argument("--components", type=integer(1), default=10, help="upper bound on the number of components")
    g.add_argument("--max-iter", type=integer(1), default=1000, help="cap on CAVI iterations per start (default 1000)")
    g.add_argument("--tol", type=number(0, lo_open=True), default=1e-6,
                   help="stop when the ELBO per point changes by less than this, relative to its size, and no "
                        "component's weight still moves (default 1e-6)")  # fmt: skip
    g.add_argument("--n-init", type=integer(1), default=1, help="restarts; the best ELBO is kept")
    g.add_argument("--weight-threshold", type=number(0, 1, hi_open=True), default=None,
                   help="prune components holding less than this share of the points (default: less than one "
                        "point, 1/N; 0 keeps every component)")  # fmt: skip
    add_output(g, "write the predicted component of each point here (one per line)")
    add_dtype(g, "float64")
    add_seed(g)
    add_reporting(g)
    g.set_defaults(func=run_gmm)

    lda = models.add_parser("lda", help="LDA topic model on a named corpus or a corpus file")
    lda.add_argument("corpus", help="reuters | lee | lee_test | mini_newsgroups | news100 | news, or a file")
    lda.add_argument("--data-root", default=os.environ.get("VARINF_SHARED_DATA", "../shared/data"),
                     help="folder holding the named corpora (default: $VARINF_SHARED_DATA, else ../shared/data)")  # fmt: skip
    lda.add_argument("--topics", type=integer(1), default=10, help="number of topics K (default 10)")
    lda.add_argument("--method", choices=["batch", "online"], default="batch",
                     help="batch CAVI or online stochastic VI over minibatches (default batch)")  # fmt: skip
    lda.add_argument(
        "--alpha", type=number(0, lo_open=True), default=None, help="document-topic prior (default 1/topics)"
    )
    lda.add_argument("--eta", type=number(0, lo_open=True), default=None, help="topic-word prior (default 1/topics)")
    lda.add_argument("--max-iter", type=integer(1), default=100, help="passes over the corpus")
    lda.add_argument("--tol", type=number(0, lo_open=True), default=1e-6,
                     help="stop when the ELBO per token changes by less than this, relative to its size, and no "
                          "topic's size still moves (default 1e-6)")  # fmt: skip
    lda.add_argument("--batch-size", type=integer(1), default=128, help="documents per minibatch (online)")
    lda.add_argument("--test-fraction", type=number(0, 1, hi_open=True), default=0.1,
                     help="held out for perplexity (0 = none)")  # fmt: skip
    lda.add_argument("--min-df", type=integer(1), default=2, help="raw text: keep words in at least this many docs")
    lda.add_argument("--max-df", type=number(0, 1, lo_open=True), default=0.5,
                     help="raw text: drop words in more than this fraction")  # fmt: skip
    lda.add_argument("--top", type=integer(1), default=10, help="words shown per topic")
    add_dtype(lda, "float32")
    add_seed(lda)
    add_reporting(lda)
    lda.set_defaults(func=run_lda)
