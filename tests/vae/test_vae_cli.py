"""``varinf vae train|eval|plot`` end to end on a tiny image folder; errors are one clean line."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from varinf.cli.main import main

from .conftest import tiny_images


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    images = tiny_images(80, shape=(1, 8, 8))
    for i in range(len(images)):
        Image.fromarray(images[i, 0].numpy()).save(root / f"{i:03d}.png")
    return root


TRAIN = ["--latents", "2", "--hidden", "16", "--epochs", "2", "--batch-size", "8", "--valid-k", "5"]


def test_train_eval_plot(tmp_path, folder, capsys):
    run = tmp_path / "run"
    assert main(["vae", "train", "-o", str(run), "--data", str(folder), *TRAIN]) == 0
    capsys.readouterr()
    assert main(["vae", "train", "-o", str(run), "--resume", "--epochs", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 3  # per-epoch lines went to stderr
    assert json.loads((run / "history.json").read_text())[-1]["epoch"] == 3
    assert main(["vae", "eval", str(run), "--k", "20"]) == 0
    out = capsys.readouterr().out
    assert "test NLL" in out and "bits/dim" in out and "rate" in out
    assert json.loads((run / "eval_test.json").read_text())["k"] == 20
    assert main(["vae", "plot", str(run), "-o", str(tmp_path / "pics")]) == 0
    for name in ("samples", "reconstructions", "latent_map", "history"):
        with Image.open(tmp_path / "pics" / f"{name}.png") as im:
            assert im.format == "PNG" and im.width > 10


def test_errors_are_clean(tmp_path, folder, capsys):
    run = tmp_path / "run"
    assert main(["vae", "train", "-o", str(run), "--data", str(folder), "--latents", "2", "--max-steps", "2"]) == 0
    capsys.readouterr()
    assert main(["vae", "train", "-o", str(run), "--data", str(folder), *TRAIN]) == 1
    assert "resume it (--resume)" in capsys.readouterr().err
    (run / "checkpoint.safetensors").write_bytes(b"\x00" * 10)
    assert main(["vae", "train", "-o", str(run), "--resume"]) == 1
    err = capsys.readouterr().err
    assert "corrupt" in err and "Traceback" not in err
    assert main(["vae", "eval", str(tmp_path / "nope")]) == 1
    assert "nope: no such folder" in capsys.readouterr().err
    assert main(["vae", "eval", str(folder)]) == 1
    assert "no model.safetensors" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # a bad argument: refused while parsing, exit 2
        main(["vae", "train", "-o", str(tmp_path / "x"), "--data", str(folder), "--cpu-budget", "soon"])
    assert exit_.value.code == 2 and "duration" in capsys.readouterr().err
