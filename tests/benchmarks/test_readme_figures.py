"""Every benchmark figure that README.md, the subpackage READMEs and the documentation's pages quote matches its
results JSON as it is at test time, rounded as printed: each row of ``benchmarks/readme_figures.py``'s table (file,
phrase, JSON file, function) is checked; and ``readme_figures.py --update`` rewrites exactly the figures."""

from __future__ import annotations

import re
import textwrap

import pytest

import readme_figures
from readme_figures import FIGURES, MISSING, ROOT


@pytest.mark.parametrize("entry", FIGURES, ids=[f"{i}-{e[2]}" for i, e in enumerate(FIGURES)])
def test_file_quotes_its_json(entry):
    file, _, stem, _ = entry
    phrase = readme_figures.expected(entry)
    assert readme_figures.present(entry), (
        f"{file} should say, from benchmarks/results/{stem}.json:\n  {phrase}\n"
        "(python benchmarks/readme_figures.py --update rewrites the figures; without --update it lists them)"
    )


def test_rows_are_well_formed_and_cover_the_readmes_and_docs():
    for file, phrase, stem, _ in FIGURES:
        assert (ROOT / file).is_file() and (readme_figures._results.RESULTS / f"{stem}.json").is_file()
        assert not phrase.startswith("{}") and not phrase.endswith("{}"), phrase  # --update needs both ends
    files = {e[0] for e in FIGURES}
    assert {"README.md", "src/varinf/optim/README.md", "src/varinf/diagnostics/README.md",
            "src/varinf/compression/README.md", "docs/guide/choosing.rst", "docs/guide/stan_pymc.rst"} <= files  # fmt: skip
    stems = {e[2] for e in FIGURES}
    assert {"posterior_speed", "big_data", "evidence_calibration", "cavi_gmm", "cavi_lda", "vae_mnist",
            "bitsback_mnist", "codec_rd", "codec_speed", "fuzz_vif"} <= stems  # fmt: skip


def test_every_headline_row_of_the_readme_is_traced():
    """Each row of README.md's headline table with a results file is a row of FIGURES."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Headline results") : text.index("## Documentation")]
    rows = [r for r in table.splitlines() if r.startswith("| ") and ".json" in r and not r.startswith("| what")]
    traced = [readme_figures._norm(readme_figures.expected(e)) for e in FIGURES if e[0] == "README.md"]
    assert rows and all(any(t in readme_figures._norm(r) for t in traced) for r in rows), rows


@pytest.mark.parametrize("entry", FIGURES, ids=[f"{i}-{e[2]}" for i, e in enumerate(FIGURES)])
def test_update_rewrites_wrong_figures(entry):
    """Wrong figures (and placeholders), with the phrase wrapped over lines as a README wraps it, come back as
    the JSON's; the text around the phrase is left alone."""
    phrase = entry[1]
    wrong = phrase.format(*[f"X{i}" if i % 2 else "PS_Q" for i in range(phrase.count("{}"))])
    doc = (
        "Before.\n\n"
        + "\n".join(textwrap.wrap(wrong, 70, break_long_words=False, break_on_hyphens=False))
        + "\n\nAfter (1.5).\n"
    )
    new, lost = readme_figures.update_text(doc, [entry])
    assert not lost
    assert new.startswith("Before.\n\n") and new.endswith("\n\nAfter (1.5).\n")
    assert readme_figures._norm(readme_figures.expected(entry)) in readme_figures._norm(new)
    assert readme_figures.update_text(new, [entry])[0] == new  # idempotent


def test_update_leaves_correct_files_alone_and_reports_lost_phrases():
    entry = next(e for e in FIGURES if e[0] == "README.md")
    text = (ROOT / "README.md").read_text()
    assert readme_figures.update_text(text, [entry]) == (text, [])
    gone = re.sub(r"\s+", " ", text).replace(entry[1].split("{}")[0].strip(), "reworded")
    assert readme_figures.update_text(gone, [entry])[1] == [entry]


def test_a_figure_the_json_lacks_reads_as_a_dash():
    entry = ("README.md", "median {} s wall ({} s CPU) here", "posterior_speed", lambda p: None)
    assert readme_figures.expected(entry) == f"median {MISSING} s wall ({MISSING} s CPU) here"
    new, _ = readme_figures.update_text("a median 1.87 s wall (2.33 s CPU) here.", [entry])
    assert new == f"a median {MISSING} s wall ({MISSING} s CPU) here."
