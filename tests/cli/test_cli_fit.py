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


@pytest.mark.filterwarnings("ignore::varinf.optim.ConvergenceWarning")  # 250 steps on purpose
@pytest.mark.parametrize(("tol", "total"), [(None, 250), (1e-3, None)], ids=["fixed-budget", "until-converged"])
def test_progress_bar_total_is_honest(monkeypatch, tol, total):
    """A fixed budget runs exactly max_steps (the bar ends at 100%); a converging run stops early, so its bar
    has no total to fall short of. Either way the bar counts every step taken, the last partial window too."""
    import io

    import tqdm.auto

    import varinf
    from varinf.models import load_example

    bars = []

    class Recording(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "file": io.StringIO()})
            self.total_asked, self.counted = kwargs.get("total"), 0
            bars.append(self)

        def update(self, n=1):
            self.counted += n
            return super().update(n)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
    res = varinf.fit(load_example("normal_normal"), max_steps=250, lr=0.05, tol_rel_obj=tol, progress=True,
                     diagnose=False)  # fmt: skip
    (bar,) = bars
    assert bar.total_asked == total and bar.counted == bar.n == res.num_steps
    assert "at most 250 steps" in bar.desc or tol is None


@pytest.mark.filterwarnings("ignore::varinf.optim.ConvergenceWarning")  # 300 steps on purpose
def test_evidence_options_reach_the_fit_and_json_hides_an_untrusted_se(capsys):
    import json

    from varinf.models import load_example

    exact = load_example("linear_regression").exact_log_evidence()
    short = ["fit", "linear_regression", "--max-steps", "300", "--lr", "0.02", "--fixed", "--draws", "500", "--json"]
    assert main([*short, "--evidence", "is"]) == 0
    ev = json.loads(capsys.readouterr().out)["diagnostics"]
    assert ev["log_evidence_method"] == "is" and ev["log_evidence_grad_evals"] == 0
    assert not ev["log_evidence_reliable"] and ev["log_evidence_se"] is None  # mean-field q of a correlated posterior
    assert main([*short, "--evidence", "bridge", "--evidence-budget", "3000"]) == 0
    ev = json.loads(capsys.readouterr().out)["diagnostics"]
    assert ev["log_evidence_method"] == "bridge" and 0 < ev["log_evidence_grad_evals"] <= 3000
    assert ev["log_evidence_reliable"] and abs(ev["log_evidence"] - exact) < 4 * ev["log_evidence_se"] + 1e-3
