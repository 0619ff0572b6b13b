"""A folder of inputs for CLI tests: an image, a tiny codec and a .vif it wrote, model files (good and broken),
data files, existing outputs the user cares about, a folder, links to the image and a FIFO."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from varinf.cli.main import main
from varinf.compression import CodecConfig, ImageCodec, save_codec

GOOD_MODEL = """
import torch
from torch.distributions import Normal
from varinf import Latent, Model

y = torch.tensor([0.2, 0.9, 1.4])
model = Model([Latent("mu")], lambda mu: Normal(0, 5).log_prob(mu)
              + Normal(mu[..., None], 1.0).log_prob(y).sum(-1), name="good")
"""

BROKEN = {
    "syntax.py": "import torch\nx = (\n",
    "imports.py": "import torch\nimport no_such_module_anywhere\n",
    "raises.py": "import torch\n\ndef model():\n    return 1 / 0\n",
    "int64.py": "from varinf import Latent, Model\nmodel = Model([Latent('mu')], lambda mu: (mu * 0).long())\n",
    "complex.py": "from varinf import Latent, Model\nmodel = Model([Latent('mu')], lambda mu: -(mu**2) * (1 + 0j))\n",
    "exits.py": "import sys\nsys.exit(3)\n",
    "nomodel.py": "x = 1\n",
}


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """``varinf argv`` in this process: (exit code, stdout, stderr); argparse's SystemExit becomes its code."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under ``root``: its kind and, for regular files, its bytes (FIFOs are never opened)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                found[rel] = ("link", os.readlink(p))
            elif p.is_file():
                found[rel] = ("file", p.read_bytes(), p.stat().st_ino)
            else:
                found[rel] = ("other", p.lstat().st_mode)
    return found


def tiny_codec() -> ImageCodec:
    torch.manual_seed(0)
    return ImageCodec(CodecConfig(channels=8, latent_channels=8, hyper_channels=8, lambdas=(0.01, 0.05))).eval()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(d / "in.png")
    save_codec(tiny_codec(), d / "model")
    assert main([str(a) for a in ("compress", d / "in.png", "-o", d / "a.vif", "--model", d / "model", "--quiet")]) == 0
    (d / "good.py").write_text(textwrap.dedent(GOOD_MODEL))
    for name, text in BROKEN.items():
        (d / name).write_text(text)
    x = np.concatenate([rng.normal(-5, 1, (40, 2)), rng.normal(5, 1, (40, 2))])
    np.savetxt(d / "points.csv", x, delimiter=",")
    (d / "empty.csv").write_text("")
    words = [["apple", "pear", "plum"], ["rocket", "orbit", "moon"]]
    (d / "docs.txt").write_text("\n".join(" ".join(rng.choice(words[i % 2], 12)) for i in range(20)))
    (d / "precious.vif").write_bytes(b"the user's own file")
    (d / "garbage.vif").write_bytes(b"not a vif file at all")
    (d / "adir").mkdir()
    (d / "folder.py").mkdir()
    (d / "done").mkdir()
    (d / "done" / "summary.txt").write_text("an earlier result")
    (d / "done" / "labels.txt").write_text("keep me")
    (d / "codec_run").mkdir()
    (d / "codec_run" / "model.json").write_text("{}")
    (d / "imgs").mkdir()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(d / "imgs" / "x.png")
    (d / "link.png").symlink_to(d / "in.png")
    os.link(d / "in.png", d / "hard.png")
    os.mkfifo(d / "fifo")
    return d
