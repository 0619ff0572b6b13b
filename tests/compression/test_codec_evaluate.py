"""RD evaluation plumbing: real-file rates, Pillow baselines, BD-rate wiring, and the ``varinf codec`` commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from varinf.cli.main import main
from varinf.compression import evaluate_pillow, rd_report, save_codec


def test_rd_report_measures_real_files(tiny_codec, picture):
    img = np.ascontiguousarray(picture[:168, :176])
    report = rd_report(tiny_codec, [img], [0.0, 0.7, 1.4, 2.0], baselines={"JPEG": [20, 50, 80, 95]}, progress=False)
    learned = report.points["learned"]
    assert [p.setting for p in learned] == [0.0, 0.7, 1.4, 2.0]
    assert all(0.99 < p.bpp * 168 * 176 / (p.payload_bits + 8 * 39) < 1.01 for p in learned)  # bpp = file bits
    assert all(0.9 < p.rate_ratio < 1.1 for p in learned)
    jpeg = report.points["JPEG"]
    assert [p.bpp for p in jpeg] == sorted(p.bpp for p in jpeg)  # higher quality, more bits
    assert "learned" in report.bd_rate_psnr  # a number, or nan when the curves do not overlap
    data = json.loads(report.to_json())
    assert set(data["points"]) == {"learned", "JPEG"}
    assert "| learned |" in report.to_markdown()


def test_pillow_points_are_consistent(picture):
    img = np.ascontiguousarray(picture[:168, :168])
    (p,) = evaluate_pillow([img], "WEBP", [75], progress=False)
    assert p.codec == "WEBP" and 0 < p.bpp < 24 and 20 < p.psnr < 60 and 0 < p.ms_ssim <= 1
    with pytest.raises(ValueError, match="format"):
        evaluate_pillow([img], "GIF", [75])


def test_codec_train_and_eval_commands(tmp_path, picture, tiny_codec, capsys):
    (tmp_path / "imgs").mkdir()
    Image.fromarray(picture[:170, :170]).save(tmp_path / "imgs" / "a.png")
    args = ["codec", "train", "-o", str(tmp_path / "run"), "--images", str(tmp_path / "imgs"), "--steps", "2",
            "--channels", "8", "--latent-channels", "8", "--hyper-channels", "8", "--lambdas", "0.01", "0.05",
            "--batch-size", "2", "--patch-size", "64"]  # fmt: skip
    assert main(args) == 0
    assert (tmp_path / "run" / "model.safetensors").is_file() and "trained 2 steps" in capsys.readouterr().out
    save_codec(tiny_codec, tmp_path / "model")
    out_json = tmp_path / "rd.json"
    args = ["codec", "eval", "--images", str(tmp_path / "imgs"), "--model", str(tmp_path / "model"),
            "--qualities", "0", "2", "-o", str(out_json)]  # fmt: skip
    assert main(args) == 0
    assert "| learned |" in capsys.readouterr().out
    assert len(json.loads(out_json.read_text())["points"]["learned"]) == 2
