"""Every results table is written by its script from its JSON: regenerate each markdown and compare.

Each ``benchmarks/results/<stem>.md`` must equal ``markdown(json)`` of the script named in its JSON's provenance
(``meta["script"]``), so no figure in a results file can be typed by hand or come from anywhere but the JSON.
"""

from __future__ import annotations

import ast
import difflib
import json

import pytest

from .scripts import BENCHMARKS, RESULTS, script

# The compression results: their scripts (codec_rd.py, codec_speed.py, fuzz_vif.py, bitsback_mnist.py) belong to
# the compression work, which adopts the convention separately. Listed here so the exemption stays visible; the
# test below fails once an entry is no longer needed.
NOT_YET_CONVERTED = {
    "bitsback_mnist",
    "bitsback_mnist_8bit",
    "codec_rd",
    "codec_rd_scale42k",
    "codec_rd_step27500",
    "codec_speed",
    "codec_speed_scale42k",
    "codec_speed_smoke",
    "fuzz_vif",
}
NOT_YET_CONVERTED_SCRIPTS = {"codec_rd", "codec_speed", "fuzz_vif", "bitsback_mnist"}
# Scripts that write no results of their own: the shared helpers, the NumPyro ports, posterior_speed.py's worker,
# the README figures table.
HELPERS = {"_results", "provenance", "numpyro_posteriors", "posterior_speed_worker", "readme_figures"}

STEMS = sorted(p.stem for p in RESULTS.glob("*.md"))
CONVERTED = [s for s in STEMS if s not in NOT_YET_CONVERTED]


def _payload(stem: str) -> dict:
    return json.loads((RESULTS / f"{stem}.json").read_text())


def test_every_results_markdown_has_a_json_naming_its_script():
    assert CONVERTED, "no results markdown found"
    for stem in CONVERTED:
        path = RESULTS / f"{stem}.json"
        assert path.is_file(), f"{stem}.md has no {stem}.json"
        meta = _payload(stem).get("meta", {})
        assert "script" in meta, f"{stem}.json: meta has no 'script' (which script writes it?)"
        assert (BENCHMARKS.parent / meta["script"]).is_file(), f"{stem}.json names {meta['script']}, which is absent"


@pytest.mark.parametrize("stem", CONVERTED)
def test_markdown_is_written_from_its_json(stem):
    payload = _payload(stem)
    fresh = script(payload["meta"]["script"]).markdown(payload)
    committed = (RESULTS / f"{stem}.md").read_text()
    if fresh != committed:
        diff = "".join(
            list(difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True), "committed", "from JSON"))[
                :40
            ]
        )
        pytest.fail(f"{stem}.md differs from markdown({stem}.json); run its script with --report:\n{diff}")


def test_exemptions_are_still_needed():
    for stem in NOT_YET_CONVERTED:
        assert (RESULTS / f"{stem}.md").is_file(), f"{stem} is exempted but has no markdown: drop it from the list"
        js = RESULTS / f"{stem}.json"
        if js.is_file() and "script" in json.loads(js.read_text()).get("meta", {}):
            pytest.fail(f"{stem}.json follows the convention now: drop it from NOT_YET_CONVERTED")


def test_every_script_renders_from_json_and_has_report():
    """Each script defines ``markdown(payload)`` and a ``--report`` option (checked in its source)."""
    for path in sorted(BENCHMARKS.glob("*.py")):
        if path.stem in HELPERS or path.stem in NOT_YET_CONVERTED_SCRIPTS:
            continue
        tree = ast.parse(path.read_text())
        funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert "markdown" in funcs, f"{path.name}: no markdown(payload) function"
        assert len(funcs["markdown"].args.args) == 1, f"{path.name}: markdown must take the JSON payload alone"
        assert '"--report"' in path.read_text(), f"{path.name}: no --report option"
