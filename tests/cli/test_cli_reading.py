"""What a person reads from the CLI (issue 24): warnings on stderr that survive --quiet, models named after
their file, --draws honoured everywhere, a small -o folder, width x height, no silent lossy re-encoding, and
discovery of the built-in models without any data."""

from __future__ import annotations

import json
import textwrap

import pytest

from varinf.cli.main import warning_line
from varinf.optim import ConvergenceWarning

from .conftest import run_cli

FAST = ["--max-steps", "150", "--lr", "0.1", "--draws", "200"]  # not converged: a ConvergenceWarning

UNNAMED = """
import torch
from torch.distributions import Normal
from varinf import Latent, Model

y = torch.tensor([0.2, 0.9, 1.4, 0.3, 1.1])
model = Model([Latent("mu")], log_prior=lambda mu: Normal(0.0, 5.0).log_prob(mu),
              log_likelihood=lambda mu, data: Normal(mu, 1.0).log_prob(data["y"]), data={"y": y})
"""


@pytest.fixture
def unnamed(tmp_path):
    path = tmp_path / "poisson_like.py"
    path.write_text(textwrap.dedent(UNNAMED))
    return path


def test_warnings_go_to_stderr_and_survive_quiet_and_json(workdir, capsys):
    """The fit's ConvergenceWarning and DiagnosticWarnings reach stderr as one line each, with --quiet (stdout
    empty) and with --json (stdout only the JSON); each diagnostic message of the JSON appears there."""
    code, out, _ = run_cli(["fit", workdir / "good.py", *FAST, "--json"], capsys)
    assert code == 0
    record = json.loads(out)
    messages = record["diagnostics"]["warnings"]
    for argv in (["--quiet"], ["--json"], []):
        code, out, err_now = run_cli(["fit", workdir / "good.py", *FAST, *argv], capsys)
        assert code == 0
        lines = err_now.splitlines()
        assert lines and all(line.startswith("varinf fit: warning: ") for line in lines), err_now
        assert any("not converged after 150 steps" in line for line in lines), err_now
        for m in messages:
            assert any(line.removeprefix("varinf fit: warning: good: ") in m for line in lines), (m, err_now)
        assert "varinf fit: warning" not in out
        if argv == ["--quiet"]:
            assert out == ""


def test_a_warning_is_one_short_line():
    class WithShort(UserWarning):
        short = "k-hat 0.8: q is unreliable; try --family flow"

    long = "k-hat = 0.82 > 0.70: the q approximation is unreliable.\n Try a richer family (family='flow')."
    assert warning_line("varinf fit", long, ConvergenceWarning) == (
        "varinf fit: warning: k-hat = 0.82 > 0.70: the q approximation is unreliable."
    )
    assert warning_line("varinf fit", WithShort("anything"), WithShort).startswith(
        "varinf fit: warning: k-hat 0.8: q is unreliable; try --family flow"
    )
    assert warning_line("varinf fit", "odd input", RuntimeWarning) == "varinf fit: warning: odd input (RuntimeWarning)"


def test_a_model_file_is_named_after_the_file(unnamed, capsys):
    code, out, _ = run_cli(["fit", unnamed, *FAST, "--json"], capsys)
    assert code == 0 and json.loads(out)["model"] == "poisson_like"
    code, out, _ = run_cli(["fit", unnamed, *FAST], capsys)
    assert code == 0 and out.startswith("poisson_like: ")
    code, _, err = run_cli(["fit", unnamed, *FAST, "--batch-size", "50"], capsys)  # more rows than the data has
    assert code == 1 and "poisson_like's data" in err and "Model" not in err


def test_draws_set_the_diagnostics_and_the_output(workdir, tmp_path, capsys):
    """--draws is the number of draws the diagnostics (k-hat, PSIS table) and -o use, not only -o's."""
    pytest.importorskip("arviz")
    code, out, err = run_cli(["fit", workdir / "good.py", *FAST[:4], "--draws", "150", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["diagnostics"]["num_draws"] == 150


def test_output_folder_is_small_by_default(tmp_path, capsys):
    """A model with data: -o stores float32 draws and no pointwise groups unless asked, and says how big."""
    az = pytest.importorskip("arviz")
    base = ["fit", "normal_normal", "--max-steps", "200", "--lr", "0.05", "--fixed", "--draws", "400"]
    code, out, err = run_cli([*base, "-o", tmp_path / "a"], capsys)
    assert code == 0, err
    assert "draws.nc (" in out and "400 draws in float32" in out and "--log-likelihood would add 400 x 20" in out
    idata = az.from_netcdf(tmp_path / "a" / "draws.nc")
    assert sorted(idata.groups()) == ["posterior", "sample_stats"]
    assert idata.posterior["mu"].dtype == "float32" and idata.sample_stats["log_weight"].dtype == "float64"
    code, out, err = run_cli([*base, "-o", tmp_path / "b", "--log-likelihood", "--dtype", "float64", "--json"], capsys)
    assert code == 0, err
    info = json.loads(out)["draws_file"]
    assert (
        info["log_likelihood"]
        and info["dtype"] == "float64"
        and info["bytes"] == (tmp_path / "b" / "draws.nc").stat().st_size
    )
    idata = az.from_netcdf(tmp_path / "b" / "draws.nc")
    assert "log_likelihood" in idata.groups() and idata.posterior["mu"].dtype == "float64"
    assert idata.log_likelihood["y"].shape == (1, 400, 20)


def test_sizes_are_width_by_height_and_lossy_outputs_need_force(workdir, tmp_path, capsys):
    """The test image is 48 pixels wide and 40 high."""
    model = ["--model", workdir / "model"]
    code, out, _ = run_cli(["compress", workdir / "in.png", "-o", tmp_path / "x.vif", *model], capsys)
    assert code == 0 and "(48x40 pixels" in out
    code, out, _ = run_cli(["decompress", workdir / "a.vif", "-o", tmp_path / "x.png", *model], capsys)
    assert code == 0 and "48x40 pixels (width x height)" in out
    code, out, err = run_cli(["decompress", workdir / "a.vif", "-o", tmp_path / "x.jpg", *model], capsys)
    assert code == 1 and "lossy format" in err and "--force" in err and not (tmp_path / "x.jpg").exists()
    code, out, err = run_cli(["decompress", workdir / "a.vif", "-o", tmp_path / "x.jpg", "--force", *model], capsys)
    assert code == 0 and (tmp_path / "x.jpg").exists(), err


def test_models_are_listed_without_any_data(capsys, monkeypatch):
    import varinf.posteriordb as pdb
    from varinf.models import EXAMPLES

    def nowhere():
        raise FileNotFoundError("no posteriordb found (tried /nowhere)")

    monkeypatch.setattr(pdb, "default_root", nowhere)
    code, out, err = run_cli(["models"], capsys)
    assert code == 0 and err == ""
    for name in [*EXAMPLES, *pdb.REFERENCE_POSTERIORS]:
        assert name in out
    assert "posteriordb data: not found" in out
    record = json.loads(run_cli(["models", "--json"], capsys)[1])
    assert {e["name"] for e in record["examples"]} == set(EXAMPLES) and record["posteriordb"]["root"] is None
    # posteriordb list: the same built-in posteriors, with a warning saying the data were not found
    code, out, err = run_cli(["posteriordb", "list"], capsys)
    assert code == 0 and "varinf posteriordb list: warning: no posteriordb found" in err
    assert all(name in out for name in pdb.REFERENCE_POSTERIORS)
    code, out, err = run_cli(["posteriordb", "list", "--builtin", "--json"], capsys)
    assert code == 0 and err == "" and len(json.loads(out)["posteriors"]) == len(pdb.REFERENCE_POSTERIORS)
    code, out, err = run_cli(["posteriordb", "fit", "sblri-blr"], capsys)  # fitting needs the data
    assert code == 1 and "pass --root DIR" in err and "root=" not in err
