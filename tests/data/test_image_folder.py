"""Image-folder loader: sizes, modes, and errors that name the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from varinf.data import load_image_folder


def _write(root, n=3, size=(10, 6)):
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(root / f"im{i}.png")


def test_loads_and_resizes(tmp_path):
    _write(tmp_path)
    (tmp_path / "notes.txt").write_text("ignored")
    rgb = load_image_folder(tmp_path, size=4)
    assert rgb.images.shape == (3, 3, 4, 4) and rgb.images.dtype == torch.uint8
    grey = load_image_folder(tmp_path, mode="L", limit=2)
    assert grey.images.shape == (2, 1, 6, 10)
    with Image.open(tmp_path / "im0.png") as im:
        np.testing.assert_array_equal(grey.images[0, 0].numpy(), np.asarray(im.convert("L")))


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no image files"):
        load_image_folder(tmp_path)
    _write(tmp_path, n=1)
    _write_other = tmp_path / "other.png"
    Image.new("RGB", (5, 5)).save(_write_other)
    with pytest.raises(ValueError, match="different sizes"):
        load_image_folder(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"broken\.png"):
        load_image_folder(tmp_path, size=4)
