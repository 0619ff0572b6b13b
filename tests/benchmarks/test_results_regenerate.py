"""Every results table is written by its script from its JSON: regenerate each markdown and compare.

Each ``benchmarks/results/<stem>.md`` must equal what its script's ``markdown`` renders from ``<stem>.json`` alone,
so no figure in a results file can be typed by hand or come from anywhere but the JSON. The script is the one the
JSON names: ``meta["script"]`` (``benchmarks/_results.py``'s convention), or, for the results the codec scripts
record with ``provenance.run_environment``, the script in ``environment["command"]``; the fuzzer's JSON names itself
(``"benchmark": "fuzz_vif"``). A markdown without a JSON of its own is written from several: its script lists them
(``PARTS``, e.g. ``stan_bridge.md`` from ``stan_bridge_<section>.json``) or gathers them itself (``parts()``, e.g.
``high_dim_references.md`` from ``high_dim_references/*.json.gz``).
"""

from __future__ import annotations

import ast
import difflib
import inspect
import json
import re

import pytest

from .scripts import BENCHMARKS, RESULTS, script

# Results of earlier codec models kept beside the shipped model's: written by earlier versions of their scripts,
# which recorded no provenance, so today's scripts cannot render them. Listed so that the exemption stays
# visible; the last test fails once an entry is gone or renders.
ARCHIVED = {
    "codec_rd_meanscale35k",
    "codec_rd_scale42k",
    "codec_rd_step27500",
    "codec_speed_meanscale35k",
    "codec_speed_scale42k",
    "codec_speed_smoke",
    "fuzz_vif_scale42k",
}
# Scripts that write no results of their own: the shared helpers, the NumPyro ports, posterior_speed.py's worker,
# the README figures table.
HELPERS = {
    "_results",
    "provenance",
    "numpyro_posteriors",
    "posterior_speed_worker",
    "readme_figures",
}
# A second parameter of ``markdown`` some scripts take, rebuilt here from the JSON (see ``render``).
EXTRA_ARGS = {"codec_rd": "stem", "fuzz_vif": "tallies"}

STEMS = sorted(p.stem for p in RESULTS.glob("*.md"))
CHECKED = [s for s in STEMS if s not in ARCHIVED]


def _payload(stem: str) -> dict:
    return json.loads((RESULTS / f"{stem}.json").read_text())


def script_of(stem: str) -> str | None:
    """The script (``benchmarks/<name>.py``) that the results of ``stem`` name, or None."""
    path = RESULTS / f"{stem}.json"
    if not path.is_file():  # written from several JSONs: a script of the same name lists them
        return f"benchmarks/{stem}.py" if (BENCHMARKS / f"{stem}.py").is_file() else None
    payload = _payload(stem)
    meta, env = payload.get("meta"), payload.get("environment")
    if isinstance(meta, dict) and meta.get("script"):
        return meta["script"]
    if isinstance(env, dict) and (m := re.search(r"(benchmarks/\w+\.py)", env.get("command", ""))):
        return m.group(1)
    if payload.get("benchmark") == "fuzz_vif":
        return "benchmarks/fuzz_vif.py"
    return None


def render(stem: str) -> str:
    """The markdown of ``stem`` as its script writes it from the JSON."""
    module = script(script_of(stem))
    if not (RESULTS / f"{stem}.json").is_file():
        if hasattr(module, "parts"):  # the script gathers its JSON files itself
            return module.markdown(module.parts())
        parts = {k: (_payload(v) if (RESULTS / f"{v}.json").is_file() else None) for k, v in module.PARTS.items()}
        return module.markdown(parts)
    payload = _payload(stem)
    extra = EXTRA_ARGS.get(module.__name__)
    if extra == "stem":  # codec_rd names its plot after the results stem
        return module.markdown(payload, stem)
    if extra == "tallies":  # fuzz_vif: the per-target tallies, stored in the JSON as dicts
        tallies = {}
        for name, t in payload["targets"].items():
            tallies[name] = module.Tally()
            tallies[name].merge(t)
        return module.markdown(payload, tallies)
    return module.markdown(payload)


def test_every_results_markdown_names_its_script():
    assert CHECKED, "no results markdown found"
    for stem in CHECKED:
        name = script_of(stem)
        assert name, f"{stem}.md: no {stem}.json naming its script (meta['script']) and no script of that name"
        assert (BENCHMARKS.parent / name).is_file(), f"{stem} names {name}, which is absent"


@pytest.mark.parametrize("stem", CHECKED)
def test_markdown_is_written_from_its_json(stem):
    fresh, committed = render(stem), (RESULTS / f"{stem}.md").read_text()
    if fresh != committed:
        diff = "".join(
            list(difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True), "committed", "from JSON"))[
                :40
            ]
        )
        pytest.fail(
            f"{stem}.md differs from what {script_of(stem)} writes from the JSON; run it with --report:\n{diff}"
        )


def test_archived_results_are_still_archived():
    for stem in ARCHIVED:
        assert (RESULTS / f"{stem}.md").is_file(), f"{stem} is exempted but has no markdown: drop it from ARCHIVED"
        try:
            renders = script_of(stem) is not None and render(stem) == (RESULTS / f"{stem}.md").read_text()
        except Exception:  # an earlier layout: today's script cannot read it
            renders = False
        assert not renders, f"{stem}.md regenerates from its JSON now: drop it from ARCHIVED"


def test_every_script_renders_from_json_and_has_report():
    """Each script defines ``markdown(payload)`` and a ``--report`` option (``report`` for stan_bridge's sections)."""
    for path in sorted(BENCHMARKS.glob("*.py")):
        if path.stem in HELPERS:
            continue
        tree = ast.parse(path.read_text())
        funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert "markdown" in funcs, f"{path.name}: no markdown(payload) function"
        params = [a.arg for a in funcs["markdown"].args.args]
        allowed = 2 if path.stem in EXTRA_ARGS else 1
        assert len(params) == allowed, f"{path.name}: markdown must take the JSON payload alone, takes {params}"
        text = path.read_text()
        assert '"--report"' in text or '"--report-only"' in text or 'add_parser("report")' in text, (
            f"{path.name}: no --report option"
        )


def test_the_renderer_rebuilds_what_the_script_passes():
    """The extra arguments given above are the ones the scripts define (a renamed parameter fails here)."""
    for name, param in EXTRA_ARGS.items():
        assert list(inspect.signature(script(f"benchmarks/{name}.py").markdown).parameters)[1] == param
