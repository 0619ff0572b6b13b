"""``varinf fit``: built-in examples and user files, clear errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from varinf.cli.main import main


def test_fit_builtin_example_prints_summary(capsys):
    code = main(["fit", "normal_normal", "--max-steps", "400", "--lr", "0.05", "--fixed", "--draws", "500"])
    out = capsys.readouterr().out
    assert code == 0
    assert "mu" in out and "mean" in out and "ELBO" in out and "fixed budget" in out


def test_fit_python_file(tmp_path, capsys):
    f = tmp_path / "my_model.py"
    f.write_text(
        textwrap.dedent(
            """
            import torch
            from torch.distributions import Normal
            from varinf import Latent, Model

            y = torch.tensor([0.2, 0.9, 1.4])

            def model():
                return Model([Latent("mu"), Latent("sigma", (), "positive")],
                             lambda mu, sigma: Normal(0, 5).log_prob(mu) + Normal(0, 1).log_prob(sigma.log())
                             + Normal(mu[..., None], sigma[..., None]).log_prob(y).sum(-1), name="mine")
            """
        )
    )
    code = main(["fit", str(f), "--max-steps", "300", "--lr", "0.05", "--fixed", "--draws", "300"])
    out = capsys.readouterr().out
    assert code == 0 and "mine" in out and "sigma" in out


def test_fit_unknown_target_is_a_clean_error(capsys):
    assert main(["fit", "no_such_model"]) == 1
    err = capsys.readouterr().err
    assert "error" in err and "built-in example" in err and "Traceback" not in err


def test_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "varinf", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "fit" in r.stdout


@pytest.mark.parametrize("flag", ["--family", "--objective"])
def test_help_lists_options(flag, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    assert flag in capsys.readouterr().out
