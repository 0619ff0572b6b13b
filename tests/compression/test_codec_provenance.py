"""Codec provenance: the shipped lossy model lists every training file with its SHA-256, and no Kodak image is among
them, neither as the same file nor as the same picture (compared by small thumbnails, any rotation or flip)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from varinf.compression.lossy.pretrained import CONFIG, DEFAULT_MODEL_DIR

KODAK = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "kodak"


def _training_files() -> list[dict]:
    return json.loads((DEFAULT_MODEL_DIR / CONFIG).read_text())["info"]["training_files"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _thumbnail(path: Path, side: int = 16) -> np.ndarray:
    with Image.open(path) as im:
        im.draft("L", (4 * side, 4 * side))  # JPEG: decode at a reduced scale
        v = np.asarray(im.convert("L").resize((side, side), Image.BILINEAR), dtype=np.float64).ravel()
    v = v - v.mean()
    return v / (np.linalg.norm(v) + 1e-9)


def _variants(path: Path) -> list[np.ndarray]:
    """Thumbnails of the 8 rotations/flips of a picture (a landscape crop of a portrait is still caught below)."""
    with Image.open(path) as im:
        base = im.convert("L")
    out = []
    for k in range(4):
        for flip in (False, True):
            im = base.rotate(90 * k, expand=True)
            im = im.transpose(Image.FLIP_LEFT_RIGHT) if flip else im
            v = np.asarray(im.resize((16, 16), Image.BILINEAR), dtype=np.float64).ravel()
            v = v - v.mean()
            out.append(v / (np.linalg.norm(v) + 1e-9))
    return out


def test_shipped_model_lists_its_training_files_with_hashes():
    files = _training_files()
    assert len(files) >= 50
    assert all(re.fullmatch(r"[0-9a-f]{64}", f["sha256"]) and f["name"] for f in files)
    assert len({f["sha256"] for f in files}) == len(files)  # each distinct file once
    assert not [f for f in files if "kodak" in f["name"].lower() or "kodim" in f["name"].lower()]


@pytest.mark.skipif(not KODAK.is_dir(), reason="Kodak images not available (../shared/data/kodak)")
def test_no_kodak_image_is_a_training_file():
    kodak = sorted(KODAK.glob("kodim*.png"))
    assert len(kodak) == 24
    trained = {f["sha256"] for f in _training_files()}
    assert not [p.name for p in kodak if _sha256(p) in trained]
    # the same pictures re-encoded would have other bytes: compare the training files that are installed here
    present = [Path(f["file"]) for f in _training_files() if Path(f["file"]).is_file()]
    present = [p for p in present if _sha256(p) in trained]
    if not present:
        pytest.skip("none of the training files is installed here to compare pictures")
    thumbs = np.stack([_thumbnail(p) for p in present])  # (n, 256)
    worst = max(float(np.max(thumbs @ v)) for p in kodak for v in _variants(p))
    assert worst < 0.97, worst  # a training picture nearly identical to a Kodak image
