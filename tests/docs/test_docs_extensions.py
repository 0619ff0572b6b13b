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
    """Each directive gives a table naming its source; the speed summary gives the benchmark's ratio lines; a
    table whose part of posterior_speed.json is not measured yet says so (and only then)."""
    rt = ext["results_tables"]
    speed = json.loads((rt.RESULTS / "posterior_speed.json").read_text())
    optional = {"logreg-step": "logreg", "eight-schools-cli": "eight_schools_cli"}
    for name, make in rt.TABLES.items():
        lines = make()
        assert any("benchmarks/results/" in line for line in lines), f"{name} does not name its source"
        if name == "speed-summary":
            assert sum(line.startswith("- varinf default fit / ") for line in lines) == 3, name
        elif name in optional and not speed.get(optional[name]):
            assert lines[0].startswith("Not in the current results file"), name
        else:
            assert any(line.startswith(".. list-table::") for line in lines), name


def test_methods_table_is_computed_from_the_json(ext):
    """The default fit's row equals the medians over the posteriors of the JSON's own fits, and counts the
    posteriors where it met the goal (every mean within 0.1 reference sd, every sd ratio in [0.8, 1.2])."""
    rt = ext["results_tables"]
    runs = json.loads((rt.RESULTS / "posterior_speed.json").read_text())["runs"].values()
    fits = [s for run in runs for s in run.get("varinf", {}).get("settings", [])
            if s["name"] == "auto/auto" and not s["error"]]  # fmt: skip
    last = [s["checkpoints"][-1] for s in fits]
    text = "\n".join(rt.methods_table())
    default_row = text.split("``varinf.fit(model)`` (the default)")[1].split("* -")[0]
    assert f"- {round(statistics.median(s['info']['grad_evals'] for s in fits)):,}" in default_row
    assert f"- {statistics.median(c['max_err'] for c in last):.3f}" in default_row
    met = sum(c["max_err"] <= 0.1 and 0.8 <= c["sd_min"] and c["sd_max"] <= 1.2 for c in last)
    assert f"goal met (of {len(runs)})" in text
    assert default_row.split("\n")[4].strip() == f"- {met}", default_row  # call, grad, CPU, error, met


def test_cli_reference_covers_every_subcommand(ext):
    from varinf.cli.main import build_parser, iter_commands

    cli = ext["cli_reference"]
    parser = build_parser()
    text = []
    for _name, child, help_ in cli._children(parser):
        text += cli.command_rst(child, help_, 0)
    titles = {
        text[i]
        for i in range(len(text) - 1)
        if text[i + 1] and set(text[i + 1]) <= set("=-~^\"'") and len(text[i + 1]) == len(text[i])
    }
    for prog, sub in iter_commands(parser):
        assert prog in titles, f"{prog} missing from the CLI reference"
        for action in sub._actions:
            for option in action.option_strings:
                assert any(option in line for line in text), f"{prog} {option} missing"
