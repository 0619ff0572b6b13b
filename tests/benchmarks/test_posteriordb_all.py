"""benchmarks/posteriordb_all.py: the accuracy test, the verdicts, the process limits and the results file."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import posteriordb_all as pa
from posteriordb_all import accurate, spawn, verdict

NAMES = ["a", "b[1]", "b[2]"]


def _reference(seed=0, n=20000):
    x = np.random.default_rng(seed).normal([1.0, -2.0, 3.0], [0.5, 2.0, 1.0], size=(n, 3))
    return x, x.mean(0), x.std(0, ddof=1)


def test_errors_are_in_reference_sds_and_sd_ratios():
    x, mean, sd = _reference()
    cols = {n: x[:, j] for j, n in enumerate(NAMES)}
    c = pa._compare(cols, NAMES, mean, sd)
    assert c["max_mean_err"] == pytest.approx(0, abs=1e-12) and c["sd_ratio_min"] == pytest.approx(1)
    assert accurate(c)
    shifted = {**cols, "b[2]": cols["b[2]"] + 0.15 * sd[2]}  # 0.15 sd off: inaccurate, worst named
    c = pa._compare(shifted, NAMES, mean, sd)
    assert c["max_mean_err"] == pytest.approx(0.15) and c["worst"] == "b[2]" and not accurate(c)
    narrow = {**cols, "a": mean[0] + 0.85 * (cols["a"] - mean[0])}  # sd ratio 0.85 < 0.9
    c = pa._compare(narrow, NAMES, mean, sd)
    assert c["sd_ratio_min"] == pytest.approx(0.85) and c["worst_sd"] == "a" and not accurate(c)
    nan = {**cols, "a": np.full_like(cols["a"], np.nan)}
    assert not accurate(pa._compare(nan, NAMES, mean, sd))
    assert pa._compare({"a": cols["a"]}, NAMES, mean, sd)["n_missing"] == 2 and accurate({"missing": ["b[1]"]}) is None


def _fit(summary_err=0.01, draws_err=0.01, warnings=()):
    cmp = lambda e: {"max_mean_err": e, "sd_ratio_min": 0.95, "sd_ratio_max": 1.05, "nonfinite": 0}
    return {"status": "ok", "summary": cmp(summary_err), "draws": cmp(draws_err),
            "warnings": [{"category": c, "module": m, "text": "t"} for c, m in warnings]}  # fmt: skip


def test_verdicts_count_draws_and_only_varinf_warnings():
    assert verdict({"fit": _fit()}) == "accurate"
    assert verdict({"fit": _fit(draws_err=0.3)}) == "SILENT FAILURE"  # the summary alone is not enough
    assert verdict({"fit": _fit(summary_err=0.3)}) == "SILENT FAILURE"
    assert verdict({"fit": _fit(draws_err=0.3, warnings=[("UserWarning", "torch")])}) == "SILENT FAILURE"
    warned = _fit(draws_err=0.3, warnings=[("DiagnosticWarning", "varinf.diagnostics.diagnose")])
    assert verdict({"fit": warned}) == "warned"
    assert verdict({"fit": {"status": "timeout"}}) == "failed"


def test_other_status_separates_one_line_errors_from_deep_ones():
    err = lambda at, one=True: {"compile": {"status": "ok"}, "fit": {"status": "error", "error": {
        "type": "ModelError", "message": "m", "one_line": one, "raised_at": at}}}  # fmt: skip
    assert pa._other_status(err("src/varinf/models/model.py:3")) == "failed, one line"
    assert pa._other_status(err("torch/linalg.py:3")) == "failed, raised outside varinf"
    assert pa._other_status(err("src/varinf/x.py:1", one=False)) == "failed, not one line"
    assert pa._other_status({"compile": {"status": "ok"}, "fit": {"status": "timeout"}}) == "over the limit"
    assert pa._other_status({"compile": {"status": "ok"}, "fit": {"status": "ok"}}) == "completed"


def test_stan_columns():
    assert pa._stan_column("theta.2.3") == "theta[2,3]" and pa._stan_column("mu") == "mu"


def test_spawn_reads_the_result_and_stops_hangs_cpu_runaways_and_crashes():
    py = sys.executable
    ok = spawn([py, "-c", 'print(\'noise\'); print(\'RESULT {"status": "ok", "x": 1}\')'], None, 60, None)
    assert ok["status"] == "ok" and ok["x"] == 1
    hang = spawn([py, "-c", "import time; time.sleep(60)"], None, 1.0, None)
    assert hang["status"] == "timeout" and hang["limit"] == "1 s wall" and hang["process_wall_s"] < 30
    burn = spawn([py, "-c", "while True: pass"], None, 60, 1)
    assert burn["status"] == "timeout" and burn["limit"] == "1 s CPU"
    crash = spawn([py, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"], None, 60, None)
    assert crash["status"] == "crashed" and crash["exit"] == 3 and "boom" in crash["stderr"]


def test_committed_markdown_is_written_from_its_json():
    path = pa.OUT.with_suffix(".json")
    if not path.is_file():
        pytest.skip("no posteriordb_all results yet")
    payload = json.loads(path.read_text())
    assert payload["meta"]["script"] == "benchmarks/posteriordb_all.py"
    assert pa.OUT.with_suffix(".md").read_text() == pa.markdown(payload)
