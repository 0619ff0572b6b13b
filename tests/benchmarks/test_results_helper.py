"""benchmarks/_results.py: what it records about a run, and that markdown is written from the JSON as read back."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import _results

from .scripts import BENCHMARKS


def test_provenance_records_the_command_as_run(monkeypatch):
    monkeypatch.setattr(_results, "_ENV_GIVEN", {"OMP_NUM_THREADS": "1"})
    monkeypatch.setattr("sys.argv", ["benchmarks/x.py", "--flag", "a b"])
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    meta = _results.provenance(str(BENCHMARKS / "logreg_svi.py"), steps=5)
    assert meta["script"] == "benchmarks/logreg_svi.py"
    assert meta["command"].startswith("OMP_NUM_THREADS=1 taskset -c 0 ")
    assert meta["command"].endswith("benchmarks/x.py --flag 'a b'")  # quoted as a shell would need it
    assert meta["settings"] == {"steps": 5}
    assert meta["versions"]["torch"] and meta["versions"]["python"]
    assert len(meta["load_start"]) == 3 and meta["commit"]
    assert isinstance(meta["dirty"], list)
    done = _results.finish(meta)
    assert done["wall_s"] >= 0 and done["cpu_s"] >= 0 and len(done["load_end"]) == 3 and "_t0" not in done


def test_finish_closes_the_rerun_that_is_running():
    first = _results.finish(_results.provenance(str(BENCHMARKS / "logreg_svi.py")))
    meta = _results.with_rerun(first, _results.provenance(str(BENCHMARKS / "logreg_svi.py")), "more rows")
    _results.finish(meta)
    assert meta["reruns"][-1]["what"] == "more rows" and "wall_s" in meta["reruns"][-1]
    assert meta["wall_s"] == first["wall_s"]  # the first run's record is left as it was


def test_save_renders_the_json_as_read_back(tmp_path):
    seen = []

    def markdown(payload):
        seen.append(payload)
        return f"x = {payload['x']}, t = {payload['t']}\n"

    meta = _results.provenance(str(BENCHMARKS / "logreg_svi.py"))
    payload = {"meta": meta, "x": np.float64(0.5), "t": (1, 2), "arr": np.arange(3)}
    md = _results.save(tmp_path / "r", payload, markdown)
    assert md == "x = 0.5, t = [1, 2]\n"  # a tuple comes back from JSON as a list: the markdown shows what is stored
    stored = json.loads((tmp_path / "r.json").read_text())
    assert stored["arr"] == [0, 1, 2] and "_t0" not in stored["meta"]
    assert (tmp_path / "r.md").read_text() == md
    (tmp_path / "r.md").write_text("typed by hand\n")
    assert _results.report(tmp_path / "r.json", markdown) == md
    assert (tmp_path / "r.md").read_text() == md


def test_report_without_a_json_says_so(tmp_path):
    with pytest.raises(SystemExit, match="no results JSON"):
        _results.report(tmp_path / "missing", lambda p: "")


def test_legacy_records_say_what_was_not_recorded():
    meta = {"script": "benchmarks/x.py", "command": "python benchmarks/x.py",
            "legacy": {"recorded": {"commit": "abc1234"}, "not_recorded": ["load average"]}}  # fmt: skip
    text = "\n".join(_results.provenance_lines(meta))
    assert "`python benchmarks/x.py`" in text and "commit: abc1234" in text and "Not recorded: load average" in text


def test_running_record_renders_and_says_so():
    text = "\n".join(_results.provenance_lines(_results.provenance(str(BENCHMARKS / "logreg_svi.py"))))
    assert "run not finished" in text and "load average" in text
