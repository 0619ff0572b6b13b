"""Corpus readers and the bag-of-words builder (varinf.data.text)."""

from __future__ import annotations

import gzip
import json
import zipfile

import numpy as np
import pytest

from varinf.data.text import Corpus, bag_of_words, load_corpus, read_csv_zip, read_json, read_ldac, read_lines


def test_ldac_round_trip_with_vocab_and_titles(tmp_path):
    (tmp_path / "c.ldac").write_text("2 0:3 2:1\n0\n1 1:4\n")
    (tmp_path / "c.tokens").write_text("apple\nbanana\ncherry\n")
    (tmp_path / "c.titles").write_text("first\nempty\nthird\n")
    corpus = load_corpus(tmp_path / "c.ldac")
    assert corpus.vocab == ["apple", "banana", "cherry"] and corpus.titles == ["first", "empty", "third"]
    assert np.array_equal(corpus.counts.toarray(), [[3, 0, 1], [0, 0, 0], [0, 4, 0]])
    assert corpus.n_tokens == 8 and repr(corpus) == "Corpus(3 docs, 3 words, 8 tokens)"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("2 0:3\n", "declares 2 terms but lists 1"),
        ("1 0:x\n", "expected 'M id:count"),
        ("1 7:1\n", "bad pair 7:1"),
        ("\n", "empty line"),
    ],
)
def test_ldac_errors_name_the_line(tmp_path, text, match):
    (tmp_path / "bad.ldac").write_text("1 0:1\n" + text)
    (tmp_path / "bad.tokens").write_text("a\nb\n")
    with pytest.raises(ValueError, match=match) as info:
        read_ldac(tmp_path / "bad.ldac", tmp_path / "bad.tokens")
    assert "bad.ldac:2" in str(info.value)


def test_lines_json_and_zip_readers(tmp_path):
    (tmp_path / "docs.txt").write_text("alpha beta\n\n  gamma  \n")
    assert read_lines(tmp_path / "docs.txt") == ["alpha beta", "gamma"]
    bunch = {"data": ["one doc", "two doc"], "target": [1, 0], "target_names": ["x", "y"]}
    with gzip.open(tmp_path / "b.json.gz", "wt") as f:
        json.dump(bunch, f)
    docs, labels, names = read_json(tmp_path / "b.json.gz")
    assert docs == bunch["data"] and labels.tolist() == [1, 0] and names == ["x", "y"]
    (tmp_path / "l.json").write_text(json.dumps(["a", "b"]))
    assert read_json(tmp_path / "l.json")[0] == ["a", "b"]
    with zipfile.ZipFile(tmp_path / "n.zip", "w") as z:
        z.writestr("n.csv", "title,text\nT1,hello world\nT2,second text\n")
    docs, titles = read_csv_zip(tmp_path / "n.zip")
    assert docs == ["hello world", "second text"] and titles == ["T1", "T2"]
    with pytest.raises(ValueError, match="no column 'body'"):
        read_csv_zip(tmp_path / "n.zip", column="body")


def test_corrupt_and_missing_files(tmp_path):
    (tmp_path / "x.json.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="corrupt"):
        read_json(tmp_path / "x.json.gz")
    (tmp_path / "y.json").write_text("{oops")
    with pytest.raises(ValueError, match="invalid JSON"):
        read_json(tmp_path / "y.json")
    (tmp_path / "z.zip").write_bytes(b"PK junk")
    with pytest.raises(ValueError, match="corrupt zip"):
        read_csv_zip(tmp_path / "z.zip")
    with pytest.raises(FileNotFoundError, match="no such corpus file"):
        load_corpus(tmp_path / "missing.ldac")
    with pytest.raises(ValueError, match="data root"):
        load_corpus("reuters")


def test_bag_of_words_counts_and_filters():
    docs = ["The cat sat on the mat mat", "A cat and a dog", "dog dog bird", "zebra"]
    corpus = bag_of_words(docs, min_df=1, max_df=1.0)
    assert corpus.vocab == ["bird", "cat", "dog", "mat", "sat", "zebra"]  # "the", "and", "on", "a" dropped
    assert np.array_equal(corpus.counts.toarray()[0], [0, 1, 0, 2, 1, 0])
    assert np.array_equal(corpus.counts.toarray()[2], [1, 0, 2, 0, 0, 0])
    assert bag_of_words(docs, min_df=2, max_df=1.0).vocab == ["cat", "dog"]
    assert bag_of_words(docs, min_df=1, max_df=0.3).vocab == ["bird", "mat", "sat", "zebra"]
    with pytest.raises(ValueError, match="vocabulary is empty"):
        bag_of_words(docs, min_df=3)
    train, test = bag_of_words(docs * 5, min_df=1, max_df=1.0).split(0.25, seed=1)
    assert train.n_docs == 15 and test.n_docs == 5 and train.vocab == test.vocab


def test_shared_corpora(shared_data):
    reuters = load_corpus("reuters", shared_data)
    assert reuters.counts.shape == (395, 4258) and reuters.n_tokens == 84010  # as documented in SOURCE.md
    assert reuters.titles[0].startswith("0 UK: Prince Charles")
    news = load_corpus("mini_newsgroups", shared_data)
    assert news.n_docs == 200 and np.bincount(news.labels).tolist() == [100, 100]
    lee = load_corpus("lee", shared_data)
    assert lee.n_docs == 300 and isinstance(lee, Corpus)
