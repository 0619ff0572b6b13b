"""Every benchmark figure that README.md and the subpackage READMEs quote matches its results JSON, rounded as
printed: each row of ``benchmarks/readme_figures.py``'s table (README phrase, JSON file, function) is checked."""

from __future__ import annotations

import pytest

import readme_figures


@pytest.mark.parametrize(
    "entry", readme_figures.FIGURES, ids=[f"{i}-{e[2]}" for i, e in enumerate(readme_figures.FIGURES)]
)
def test_readme_quotes_its_json(entry):
    file, _, stem, _ = entry
    phrase = readme_figures.expected(entry)
    assert readme_figures.present(entry), (
        f"{file} should say, from benchmarks/results/{stem}.json:\n  {phrase}\n"
        "(python benchmarks/readme_figures.py lists every figure)"
    )


def test_every_quoted_results_file_exists_and_the_table_covers_the_readmes():
    stems = {e[2] for e in readme_figures.FIGURES}
    assert {"posterior_speed", "big_data", "logreg_svi", "evidence_calibration", "cavi_gmm", "cavi_lda"} <= stems
    files = {e[0] for e in readme_figures.FIGURES}
    assert {"README.md", "src/varinf/optim/README.md", "src/varinf/diagnostics/README.md"} <= files
