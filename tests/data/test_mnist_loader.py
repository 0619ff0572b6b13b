"""MNIST idx reading, the 50k/10k/10k split, binarization, and the (offline, file://) download path."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import torch

from varinf.data import download_mnist, dynamic_binarize, fixed_binarize, load_mnist, read_idx, write_idx
from varinf.data.idx import decode_idx, encode_idx
from varinf.data.mnist import FILES


def _tiny_mnist(root, n_train=30, n_test=10):
    rng = np.random.default_rng(0)
    write_idx(root / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8))
    write_idx(root / "train-labels-idx1-ubyte.gz", (np.arange(n_train) % 10).astype(np.uint8))
    write_idx(root / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8))  # raw form too
    write_idx(root / "t10k-labels-idx1-ubyte.gz", (np.arange(n_test) % 10).astype(np.uint8))


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_round_trip(tmp_path, name):
    a = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / name, a)), a)


def test_idx_errors_name_the_problem(tmp_path):
    good = encode_idx(np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError, match="not an idx file"):
        decode_idx(b"\x01\x02\x03\x04rest", "x")
    with pytest.raises(ValueError, match="says shape"):
        decode_idx(good[:-1], "x")
    with pytest.raises(ValueError, match="corrupt gzip"):
        decode_idx(gzip.compress(good)[:-6], "x")
    with pytest.raises(ValueError, match="type code"):
        decode_idx(b"\x00\x00\x0d\x01" + (1).to_bytes(4, "big") + b"\x00" * 4, "x")
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing.idx")


def test_load_tiny_fixture_split(tmp_path):
    _tiny_mnist(tmp_path)
    m = load_mnist(tmp_path, valid_size=10)
    assert m.train.images.shape == (20, 1, 28, 28) and m.valid.images.shape == (10, 1, 28, 28)
    assert m.test.images.shape == (10, 1, 28, 28) and m.train.images.dtype == torch.uint8
    assert m.valid.labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]  # the *last* 10 training examples
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_mnist(tmp_path / "nowhere")


def test_real_mnist_split(shared_data):
    m = load_mnist(shared_data / "mnist")
    assert (len(m.train), len(m.valid), len(m.test)) == (50_000, 10_000, 10_000)
    assert m.train.labels[0] == 5 and m.test.labels[0] == 7  # well-known first labels of MNIST
    assert int(m.train.images.max()) == 255 and int(m.train.images.min()) == 0


def test_binarizations():
    img = torch.tensor([0, 255, 128], dtype=torch.uint8).repeat(20000, 1)
    x = dynamic_binarize(img, torch.Generator().manual_seed(1))
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert x[:, 0].sum() == 0 and x[:, 1].min() == 1
    assert abs(float(x[:, 2].mean()) - 128 / 255) < 4 * (0.25 / 20000) ** 0.5
    assert torch.equal(fixed_binarize(img, 3), fixed_binarize(img, 3))
    assert not torch.equal(dynamic_binarize(img), dynamic_binarize(img))
    with pytest.raises(ValueError, match="uint8"):
        dynamic_binarize(img.float())


def test_download_checks_and_falls_back(shared_data, tmp_path):
    """Offline: mirrors are file:// URLs. A corrupt mirror is rejected, the next one is used, writes are atomic."""
    good = shared_data / "mnist"
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in FILES:
        (bad / name).write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07"))
    dest = tmp_path / "dest"
    download_mnist(dest, mirrors=(bad.as_uri() + "/", good.as_uri() + "/"))
    assert sorted(p.name for p in dest.iterdir()) == sorted(FILES)  # no temporary files left behind
    assert len(load_mnist(dest).train) == 50_000
    shutil.rmtree(dest)
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        download_mnist(dest, mirrors=(bad.as_uri() + "/",))
    assert not any(dest.iterdir())
