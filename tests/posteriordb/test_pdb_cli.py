"""``varinf posteriordb list|fit`` and ``fit_posterior`` on shipped data."""

from __future__ import annotations

import json

from varinf.cli.main import main
from varinf.posteriordb import REFERENCE_POSTERIORS


def test_cli_list(shared_data, capsys):
    assert main(["posteriordb", "list", "--root", str(shared_data / "posteriordb"), "--with-reference"]) == 0
    out = capsys.readouterr().out.splitlines()
    implemented = {line.split()[0] for line in out if "implemented" in line}
    assert set(REFERENCE_POSTERIORS) <= implemented and all("reference draws" in line for line in out)


def test_cli_fit_prints_diagnostics_accuracy_and_writes_plots(shared_data, tmp_path, capsys):
    args = ["posteriordb", "fit", "gp_pois_regr-gp_regr", "--root", str(shared_data / "posteriordb")]
    args += ["--family", "fullrank", "--max-steps", "400", "--fixed", "--lr", "0.03", "--draws", "1000"]
    args += ["-o", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "k-hat " in out and "verdict " in out and "vs reference (3 quantities)" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "gp_pois_regr-gp_regr_fullrank_marginals.png",
        "gp_pois_regr-gp_regr_fullrank_summary.json",
        "gp_pois_regr-gp_regr_fullrank_summary.txt",
        "gp_pois_regr-gp_regr_fullrank_trace.png",
    ]
    record = json.loads((tmp_path / "gp_pois_regr-gp_regr_fullrank_summary.json").read_text())
    assert len(record["reference"]["quantities"]) == 3 and record["family"] == "fullrank"
    assert main(args) == 1  # outputs exist: refused without --force
    assert "exists" in capsys.readouterr().err


def test_cli_unknown_posterior_is_a_clean_error(shared_data, capsys):
    assert main(["posteriordb", "fit", "nope", "--root", str(shared_data / "posteriordb")]) == 1
    assert "no posterior 'nope'" in capsys.readouterr().err


def test_cli_fit_explain_gives_the_long_summary_and_the_comparison(shared_data, capsys):
    args = ["posteriordb", "fit", "gp_pois_regr-gp_regr", "--root", str(shared_data / "posteriordb")]
    args += ["--family", "fullrank", "--max-steps", "400", "--fixed", "--lr", "0.03", "--draws", "1000"]
    assert main(args) == 0
    short = capsys.readouterr().out
    assert main([*args, "--explain"]) == 0
    long = capsys.readouterr().out
    assert "arXiv" in long and "arXiv" not in short and len(long.splitlines()) > len(short.splitlines())
    assert "vs reference (3 quantities)" in long
