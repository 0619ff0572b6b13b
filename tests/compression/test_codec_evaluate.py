"""RD evaluation plumbing: real-file rates, Pillow baselines, BD-rate wiring, and the ``varinf codec`` commands."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from PIL import Image

from varinf.cli.main import main
from varinf.compression import evaluate_pillow, rd_report, save_codec
from varinf.compression.evaluation.bdrate import bd_rate
from varinf.compression.evaluation.evaluate import RDPoint, build_report
from varinf.compression.lossy.image_file import compress_image, decompress_image


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR from its definition, apart from the metrics module: 10 log10(255^2 / MSE) over all channels."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def _jpeg(img: np.ndarray, quality: int) -> tuple[int, np.ndarray]:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return len(buf.getvalue()), np.asarray(im.convert("RGB"))


def test_rd_report_measures_real_files(tiny_codec, picture):
    """Every figure of the report equals a computation from the bytes themselves: bpp = 8 · file bytes / pixels
    averaged over images, PSNR from the decoded pixels' MSE, BD-rates from those curves."""
    imgs = [np.ascontiguousarray(picture[:168, :176]), np.ascontiguousarray(picture[64:232, 40:216])]
    n = 168 * 176
    qualities = [0.0, 0.7, 1.4, 2.0]
    report = rd_report(tiny_codec, imgs, qualities, baselines={"JPEG": [20, 50, 80, 95]}, progress=False)
    learned = report.points["learned"]
    assert [p.setting for p in learned] == qualities and report.num_images == 2
    for p, q in zip(learned, qualities):
        files = [compress_image(img, tiny_codec, q) for img in imgs]  # deterministic: the same bytes again
        decoded = [decompress_image(f.data, tiny_codec) for f in files]
        assert p.bpp == pytest.approx(np.mean([8 * len(f.data) / n for f in files]), rel=1e-12)
        assert p.psnr == pytest.approx(np.mean([_psnr(i, d) for i, d in zip(imgs, decoded)]), abs=1e-9)
        assert p.payload_bits == sum(f.payload_bits for f in files) and 0.9 < p.rate_ratio < 1.1
        assert p.bpp * n * 2 > p.payload_bits  # the file is the payload plus its header
    jpeg = report.points["JPEG"]
    for p, q in zip(jpeg, [20, 50, 80, 95]):
        sizes, decoded = zip(*(_jpeg(img, q) for img in imgs))
        assert p.bpp == pytest.approx(np.mean([8 * s / n for s in sizes]), rel=1e-12)
        assert p.psnr == pytest.approx(np.mean([_psnr(i, d) for i, d in zip(imgs, decoded)]), abs=1e-9)
    assert [p.bpp for p in jpeg] == sorted(p.bpp for p in jpeg)  # higher quality, more bits
    try:
        want = bd_rate([p.bpp for p in jpeg], [p.psnr for p in jpeg], [p.bpp for p in learned],
                       [p.psnr for p in learned])  # fmt: skip
    except ValueError:  # the curves do not overlap in PSNR
        want = math.nan
    got = report.bd_rate_psnr["learned"]
    assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-12)
    data = json.loads(report.to_json())
    assert set(data["points"]) == {"learned", "JPEG"}
    assert data["points"]["learned"][1]["bpp"] == learned[1].bpp
    assert f"| learned | 0.7 | {learned[1].bpp:.4f} | {learned[1].psnr:.2f} |" in report.to_markdown()


def _curve(name: str, bpp, psnr, ms_ssim) -> list[RDPoint]:
    return [RDPoint(name, float(i), b, p, m) for i, (b, p, m) in enumerate(zip(bpp, psnr, ms_ssim))]


def test_bd_rates_of_synthetic_curves_with_known_answers():
    """A codec needing 0.8x JPEG's bits at every quality has BD-rate -20% (PSNR and MS-SSIM alike); 1.25x is
    +25%; a curve entirely above JPEG's qualities has none (nan), and the overlap is the common PSNR range."""
    bpp, psnr = [0.2, 0.4, 0.8, 1.6, 3.2], [26.0, 29.0, 32.0, 35.0, 38.0]
    ms = [0.90, 0.94, 0.97, 0.985, 0.993]
    points = {
        "JPEG": _curve("JPEG", bpp, psnr, ms),
        "better": _curve("better", [0.8 * b for b in bpp], psnr, ms),
        "worse": _curve("worse", [1.25 * b for b in bpp[1:]], psnr[1:], ms[1:]),
        "apart": _curve("apart", bpp[:4], [40.0, 41.0, 42.0, 43.0], [0.995, 0.996, 0.997, 0.998]),
    }
    report = build_report(points, num_images=3)
    assert report.bd_rate_psnr["better"] == pytest.approx(-20.0, abs=1e-9)
    assert report.bd_rate_ms_ssim["better"] == pytest.approx(-20.0, abs=1e-9)
    assert report.bd_rate_psnr["worse"] == pytest.approx(25.0, abs=1e-9)
    assert report.psnr_overlap["worse"] == (29.0, 38.0) and report.psnr_overlap["better"] == (26.0, 38.0)
    assert math.isnan(report.bd_rate_psnr["apart"]) and math.isnan(report.bd_rate_ms_ssim["apart"])
    assert "| better | -20.0% | 26.00 .. 38.00 | -20.0% |" in report.to_markdown()
    # JPEG's rate is 0.2 * 2^((q - 26) / 3) exactly (log-rate linear in PSNR, which pchip reproduces): a codec
    # at 0.15 * 2^((q - 26) / 3), sampled at other qualities, needs 25% fewer bits everywhere
    qs = [27.5, 30.5, 33.5, 36.5]
    shifted = _curve("learned", [0.15 * 2 ** ((q - 26.0) / 3) for q in qs], qs, [0.92, 0.955, 0.975, 0.99])
    got = build_report({"JPEG": points["JPEG"], "learned": shifted}, 1)
    assert got.bd_rate_psnr["learned"] == pytest.approx(-25.0, abs=1e-9)
    assert got.psnr_overlap["learned"] == (27.5, 36.5)


def test_pillow_points_are_consistent(picture):
    img = np.ascontiguousarray(picture[:168, :168])
    (p,) = evaluate_pillow([img], "WEBP", [75], progress=False)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "WEBP", quality=75)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        out = np.asarray(im.convert("RGB"))
    assert p.codec == "WEBP" and p.setting == 75
    assert p.bpp == pytest.approx(8 * len(buf.getvalue()) / (168 * 168), rel=1e-12)
    assert p.psnr == pytest.approx(_psnr(img, out), abs=1e-9) and 0 < p.ms_ssim < 1
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
