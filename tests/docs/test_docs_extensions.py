"""The documentation's generated pages: tables from benchmarks/results/*.json and the CLI reference from the
argparse parsers (docs/_ext). Fast: no Sphinx build, only the text the directives produce."""

from __future__ import annotations

import importlib
import json
import statistics
import sys
from pathlib import Path

import pytest

DOCS_EXT = Path(__file__).resolve().parents[2] / "docs" / "_ext"
pytestmark = pytest.mark.skipif(not DOCS_EXT.is_dir(), reason="docs/_ext not in this checkout")
pytest.importorskip("sphinx")


@pytest.fixture(scope="module")
def ext():
    sys.path.insert(0, str(DOCS_EXT))
    try:
        yield {name: importlib.import_module(name) for name in ("results_tables", "cli_reference")}
    finally:
        sys.path.remove(str(DOCS_EXT))


def test_every_results_table_renders(ext):
    rt = ext["results_tables"]
    for name, make in rt.TABLES.items():
        lines = make()
        assert any(line.startswith(".. list-table::") for line in lines), name
        assert any("benchmarks/results/" in line for line in lines), f"{name} does not name its source"


def test_methods_table_is_computed_from_the_json(ext):
    """The default fit's row equals the median over the posteriors of the JSON's own rows."""
    rt = ext["results_tables"]
    rows = [r for r in json.loads((rt.RESULTS / "posterior_speed.json").read_text())["rows"] if r["fit"] == "auto/auto"]
    text = "\n".join(rt.methods_table())
    default_row = text.split("``varinf.fit(model)`` (the default)")[1].split("* -")[0]
    assert f"- {round(statistics.median(r['grad_evals'] for r in rows)):,}" in default_row
    assert f"- {statistics.median(r['max_err'] for r in rows):.3f}" in default_row
    within = sum(r["max_err"] <= 0.1 for r in rows)
    assert f"- {within}\n" in default_row


def test_cli_reference_covers_every_subcommand(ext):
    from varinf.cli.main import build_parser, iter_commands

    cli = ext["cli_reference"]
    parser = build_parser()
    text = []
    for _name, child, help_ in cli._children(parser):
        text += cli.command_rst(child, help_, 0)
    titles = {text[i] for i in range(len(text) - 1) if text[i + 1] and set(text[i + 1]) <= set("=-~^\"'")
              and len(text[i + 1]) == len(text[i])}
    for prog, sub in iter_commands(parser):
        assert prog in titles, f"{prog} missing from the CLI reference"
        for action in sub._actions:
            for option in action.option_strings:
                assert any(option in line for line in text), f"{prog} {option} missing"
