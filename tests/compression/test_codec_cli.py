"""``varinf compress`` / ``varinf decompress``: round trip through files, refusals, clean errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from varinf.cli.main import main
from varinf.compression import save_codec


@pytest.fixture
def workdir(tmp_path, tiny_codec, picture):
    save_codec(tiny_codec, tmp_path / "model")
    Image.fromarray(picture[:70, :90]).save(tmp_path / "in.png")
    return tmp_path


def test_compress_decompress_round_trip(workdir, capsys):
    model = str(workdir / "model")
    assert main(["compress", str(workdir / "in.png"), "-o", str(workdir / "a.vif"), "-q", "1.5", "--model", model]) == 0
    assert "bpp" in capsys.readouterr().out
    assert main(["decompress", str(workdir / "a.vif"), "-o", str(workdir / "out.png"), "--model", model]) == 0
    out = np.asarray(Image.open(workdir / "out.png"))
    assert out.shape == (70, 90, 3)


def test_existing_output_is_not_overwritten(workdir, capsys):
    model = str(workdir / "model")
    (workdir / "a.vif").write_bytes(b"precious")
    assert main(["compress", str(workdir / "in.png"), "-o", str(workdir / "a.vif"), "--model", model]) == 1
    assert "--force" in capsys.readouterr().err
    assert (workdir / "a.vif").read_bytes() == b"precious"
    assert main(["compress", str(workdir / "in.png"), "-o", str(workdir / "a.vif"), "--model", model, "--force"]) == 0


@pytest.mark.parametrize("content", [b"", b"hello world", b"\x89VIF\x01\x01" + bytes(30)])
def test_bad_files_give_one_line_errors(workdir, capsys, content):
    (workdir / "bad.vif").write_bytes(content)
    code = main(
        ["decompress", str(workdir / "bad.vif"), "-o", str(workdir / "o.png"), "--model", str(workdir / "model")]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("varinf decompress: error:") and "Traceback" not in err
    assert not (workdir / "o.png").exists()


def test_missing_input_and_non_image_input(workdir, capsys):
    model = str(workdir / "model")
    assert main(["compress", str(workdir / "nope.png"), "-o", str(workdir / "x.vif"), "--model", model]) == 1
    (workdir / "text.png").write_text("not an image")
    assert main(["compress", str(workdir / "text.png"), "-o", str(workdir / "x.vif"), "--model", model]) == 1
    assert "cannot read as an image" in capsys.readouterr().err
