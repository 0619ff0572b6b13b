"""Checkpoints: resume == uninterrupted (same seed), corrupt files give clear errors, nothing is overwritten."""

from __future__ import annotations

import json

import pytest
import torch

from varinf.vae import CheckpointError, TrainConfig, VAEConfig, load_vae, save_vae, train
from varinf.vae.checkpoint import read_safetensors

from .conftest import TINY, tiny_images

CFG = VAEConfig(data_shape=(1, 4, 4), latents=(2,), hidden=((8,),))
KW = dict(objective="iwae", k=3, gradient="dreg", batch_size=8, valid_k=5, valid_size=16, checkpoint_every_s=None)
IMAGES, VALID = tiny_images(48), tiny_images(16, seed=1)


def _run(path, config, resume=False, vae_config=CFG):
    return train(path, vae_config, config, IMAGES, VALID, mode="resume" if resume else "new", progress=False)


def _same(a, b):
    sa, sb = a.vae.state_dict(), b.vae.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("full"), TrainConfig(epochs=3, **KW))


def test_resume_at_epoch_boundary_equals_uninterrupted(tmp_path, uninterrupted):
    _run(tmp_path, TrainConfig(epochs=1, **KW))
    resumed = _run(tmp_path, TrainConfig(epochs=3, **KW), resume=True)
    assert _same(resumed, uninterrupted)
    assert [r.nll for r in resumed.history] == [r.nll for r in uninterrupted.history]


def test_resume_mid_epoch_equals_uninterrupted(tmp_path, uninterrupted):
    """Stopped after 4 of 6 steps of epoch 1: the permutation, position and both RNG states come back."""
    first = _run(tmp_path, TrainConfig(epochs=None, max_steps=4, **KW))
    assert first.stopped == "max_steps" and first.steps == 4
    resumed = _run(tmp_path, TrainConfig(epochs=3, **KW), resume=True)
    assert resumed.steps == uninterrupted.steps == 18
    assert _same(resumed, uninterrupted)


def test_resume_changes_only_stopping_criteria(tmp_path):
    _run(tmp_path, TrainConfig(epochs=1, **KW))
    res = _run(tmp_path, TrainConfig(epochs=2, **{**KW, "lr": 0.5}), resume=True)
    assert res.config.lr == 1e-3 and json.loads((tmp_path / "config.json").read_text())["train"]["lr"] == 1e-3


def test_refuses_to_overwrite_and_to_resume_nothing(tmp_path):
    _run(tmp_path, TrainConfig(epochs=1, **KW))
    before = (tmp_path / "checkpoint.safetensors").read_bytes()
    with pytest.raises(ValueError, match="already holds a run"):
        _run(tmp_path, TrainConfig(epochs=1, **KW))
    assert (tmp_path / "checkpoint.safetensors").read_bytes() == before
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        _run(tmp_path / "empty", TrainConfig(epochs=1, **KW), resume=True)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupted_checkpoint_gives_clear_error(tmp_path, damage):
    _run(tmp_path, TrainConfig(epochs=1, **KW))
    path = tmp_path / "checkpoint.safetensors"
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-20] ^= 0xFF  # inside the tensor data: only the checksum notices
    elif damage == "garbage":
        data = bytearray(b"\x93NUMPY" + bytes(100))
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=str(path.name)) as err:
        _run(tmp_path, TrainConfig(epochs=2, **KW), resume=True)
    assert any(w in str(err.value) for w in ("corrupt", "truncated", "checksum", "not a varinf"))


def test_model_file_round_trip_gives_distributions(tmp_path):
    torch.manual_seed(0)
    res = _run(tmp_path, TrainConfig(epochs=1, **KW), vae_config=TINY["logistic"])
    vae = load_vae(tmp_path)
    x = vae.likelihood.prepare(tiny_images(3))
    z = vae.q(x).sample()
    torch.testing.assert_close(vae.p_x(z).log_prob(x), res.vae.p_x(z).log_prob(x))
    torch.testing.assert_close(vae.p_z().log_prob(z), res.vae.p_z().log_prob(z))
    pmf = vae.p_x(z).base_dist.probs()  # (3, 1, 4, 4, 256): what an entropy coder needs
    torch.testing.assert_close(pmf.sum(-1), torch.ones(3, 1, 4, 4))
    tensors, meta = read_safetensors(save_vae(tmp_path / "copy.safetensors", vae))
    assert meta["config"]["likelihood"] == "logistic" and all(k.startswith("model.") for k in tensors)
    with pytest.raises(CheckpointError, match="weights do not match"):
        other = tmp_path / "other"
        save_vae(other, load_vae(tmp_path))
        raw, m = read_safetensors(other / "model.safetensors")
        m["config"]["latents"] = [5]
        from varinf.vae.checkpoint import write_safetensors

        write_safetensors(other / "model.safetensors", raw, m)
        load_vae(other)
