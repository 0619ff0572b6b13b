"""``varinf cavi gmm|lda`` end to end on small files."""

from __future__ import annotations

import numpy as np
import pytest

from varinf.cli.main import main


def test_cli_gmm_prints_components_and_writes_labels(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-6, 1, (80, 2)), rng.normal(6, 1, (80, 2))])
    data = tmp_path / "points.csv"
    np.savetxt(data, x, delimiter=",", header="a,b", comments="")
    out = tmp_path / "labels.txt"
    args = ["cavi", "gmm", str(data), "--components", "5", "--output", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "converged after" in text and "2 components (3 surplus ones removed)" in text
    labels = np.loadtxt(out, dtype=int)
    assert labels.shape == (160,) and len(set(labels[:80])) == 1 and set(labels[:80]) != set(labels[80:])
    assert main(args) == 1  # refuses to overwrite
    assert "exists; pass --force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    np.save(tmp_path / "points.npy", x)
    assert main(["cavi", "gmm", str(tmp_path / "points.npy"), "--components", "3"]) == 0


def test_cli_lda_on_a_corpus_file(tmp_path, capsys):
    rng = np.random.default_rng(1)
    docs = [
        " ".join(
            rng.choice(["apple", "banana", "cherry", "grape"] if i % 2 else ["rocket", "orbit", "launch", "lunar"], 30)
        )
        for i in range(60)
    ]
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(docs))
    args = ["cavi", "lda", str(path), "--topics", "2", "--max-df", "1.0", "--top", "4"]
    assert main(args) == 0
    text = capsys.readouterr().out
    topics = [set(line.split(":")[1].split()) for line in text.splitlines() if line.strip().startswith("topic")]
    assert sorted(map(sorted, topics)) == [
        ["apple", "banana", "cherry", "grape"],
        ["launch", "lunar", "orbit", "rocket"],
    ]
    assert "held-out perplexity" in text


@pytest.mark.filterwarnings("ignore::varinf.optim.ConvergenceWarning")  # --max-iter 3 on purpose
def test_cli_lda_named_corpus_and_errors(shared_data, capsys):
    assert (
        main(
            [
                "cavi",
                "lda",
                "reuters",
                "--data-root",
                str(shared_data),
                "--topics",
                "3",
                "--max-iter",
                "3",
            ]
        )
        == 0
    )
    assert "topic  2:" in capsys.readouterr().out
    assert main(["cavi", "lda", "no_such_corpus", "--data-root", str(shared_data)]) == 1
    assert "no such corpus file" in capsys.readouterr().err
