"""Codec training extras: safetensors checkpoints, time-budget planning, warm start, late patches, photo sets."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from varinf.compression import CodecConfig, ImageCodec, TrainConfig, load_codec, train_codec
from varinf.compression.lossy.checkpoint import load_training_state, read_training_meta, save_training_state
from varinf.compression.lossy.train import export_checkpoint, planned_steps

from .conftest import TINY, make_tiny_codec


def test_checkpoint_restores_weights_and_adam_state_exactly(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.Conv2d(3, 1, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(2, 2, 5, 5)).square().mean().backward()
        opt.step()
    save_training_state(tmp_path / "c.safetensors", net, opt, step=3, meta={"k": [1, 2]})
    twin = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.Conv2d(3, 1, 1))
    twin_opt = torch.optim.Adam(twin.parameters(), lr=5.0)
    state = load_training_state(tmp_path / "c.safetensors", twin, twin_opt)
    assert state.step == 3 and state.meta == {"k": [1, 2]}
    x = torch.randn(1, 2, 5, 5)
    for a, b in ((net, opt), (twin, twin_opt)):  # one more identical step on both
        b.zero_grad()
        a(x).square().mean().backward()
        b.step()
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), twin.parameters()))
    assert json.loads((tmp_path / "c.json").read_text())["step"] == 3  # readable copy
    with pytest.raises(ValueError, match="not a varinf training checkpoint"):
        read_training_meta(tmp_path / "c.json")


def test_planned_steps_fill_the_budget_and_stay_in_bounds():
    train = TrainConfig(steps=10_000, decay_fraction=0.25)
    # 1000 s left at 0.1 s/step from step 2000: 0.75 N - 2000 + 0.25 N = 10000 -> N = 12000, capped at 10000
    assert planned_steps(train, 2000, 0.1, 1000.0) == 10_000
    assert planned_steps(train, 2000, 0.1, 500.0) == 7000
    assert planned_steps(train, 2000, 0.1, 0.0) == 2667  # no time left: the decay starts now
    late = TrainConfig(steps=10_000, decay_fraction=0.25, late_patch_size=256)
    assert planned_steps(late, 2000, 0.1, 500.0) < 7000  # dearer late steps: fewer in all


def test_a_tiny_time_budget_ends_the_run_early_with_its_decay(tmp_path, picture):
    train = TrainConfig(steps=40, batch_size=1, patch_size=64, checkpoint_every=2, log_every=2, time_budget_h=1e-9)
    result = train_codec(TINY, [picture], tmp_path, train, progress=False)
    log = [json.loads(line) for line in (tmp_path / "train.log").read_text().splitlines()]
    assert 6 <= result.steps < 40 and log[-1]["planned_steps"] == result.steps
    assert log[-1]["lr"] < train.lr  # the run ended inside its lr decay, on the re-planned schedule
    assert log[-1]["lr"] == pytest.approx(replace(train, steps=result.steps).lr_at(result.steps - 1))
    meta = read_training_meta(tmp_path / "checkpoint.safetensors")["meta"]
    assert meta["planned_steps"] == result.steps and meta["train_seconds"] > 0
    again = train_codec(TINY, [picture], tmp_path, train, progress=False)  # resumed: the plan holds
    assert again.steps == result.steps
    more = replace(train, steps=result.steps + 4, time_budget_h=None)
    assert train_codec(TINY, [picture], tmp_path, more, progress=False).steps == result.steps + 4  # as given


def test_warm_start_late_patches_and_export(tmp_path, picture):
    cfg = CodecConfig(**{**TINY.__dict__, "prior": "mean-scale"})
    init = make_tiny_codec("mean-scale", seed=3)
    train = TrainConfig(steps=4, batch_size=4, patch_size=64, late_patch_size=128, decay_fraction=0.5,
                        checkpoint_every=2, lr=1e-12)  # fmt: skip
    assert train.batch_at(1) == (4, 64) and train.batch_at(2) == (1, 128)
    train_codec(cfg, [picture], tmp_path / "run", train, progress=False, init=init)
    trained = load_codec(tmp_path / "run")
    for name, p in init.state_dict().items():  # lr ~ 0: the run kept the initial weights
        assert torch.allclose(trained.state_dict()[name], p, atol=1e-6), name
    exported = export_checkpoint(tmp_path / "run", tmp_path / "half")
    assert load_codec(tmp_path / "half").model_id() == exported.model_id()
    assert json.loads((tmp_path / "half" / "model.json").read_text())["info"]["steps"] == 4
    with pytest.raises(ValueError, match="another configuration"):
        train_codec(cfg, [picture], tmp_path / "other", train, progress=False, init=make_tiny_codec())


def test_training_files_and_snapshots_are_recorded(tmp_path, picture):
    """The manifest given to train_codec reaches the checkpoint, every snapshot and the exported model."""
    files = [{"name": "test/picture.png", "file": "/x/picture.png", "sha256": "ab" * 32, "bytes": 3}]
    train = TrainConfig(steps=4, batch_size=2, patch_size=64, checkpoint_every=2, keep_every=2)
    train_codec(TINY, [picture], tmp_path / "run", train, progress=False, training_files=files)
    assert read_training_meta(tmp_path / "run" / "checkpoint.safetensors")["meta"]["training_files"] == files
    snapshots = sorted(p.name for p in (tmp_path / "run" / "snapshots").iterdir())
    assert snapshots == ["step-000002", "step-000004"]
    for folder in [tmp_path / "run", tmp_path / "run" / "snapshots" / "step-000002"]:
        assert json.loads((folder / "model.json").read_text())["info"]["training_files"] == files
    snap = load_codec(tmp_path / "run" / "snapshots" / "step-000004")  # float16 weights of the last step
    last = load_codec(tmp_path / "run")
    assert all(torch.allclose(snap.state_dict()[k], v, atol=1e-2, rtol=1e-2) for k, v in last.state_dict().items())
    export_checkpoint(tmp_path / "run", tmp_path / "half")
    assert json.loads((tmp_path / "half" / "model.json").read_text())["info"]["training_files"] == files


def test_entropy_only_training_moves_the_entropy_model_alone(tmp_path, picture):
    """entropy_only: the transforms and gains keep their weights, the latent codec learns and its rate falls."""
    from varinf.compression.lossy.warm_starts import checkerboard_from_mean_scale

    init = checkerboard_from_mean_scale(make_tiny_codec("mean-scale", seed=2))
    train = TrainConfig(steps=30, batch_size=2, patch_size=64, lr=3e-3, entropy_only=True, log_every=10)
    train_codec(init.config, [picture], tmp_path / "run", train, progress=False, init=init)
    trained = load_codec(tmp_path / "run")
    before, after = init.state_dict(), trained.state_dict()
    frozen = [k for k in before if not k.startswith("latent.")]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["latent.entropy_parameters.4.weight"], after["latent.entropy_parameters.4.weight"])
    log = [json.loads(line) for line in (tmp_path / "run" / "train.log").read_text().splitlines()]
    assert log[-1]["bpp"] < log[0]["bpp"]


def test_photo_manifest_lists_each_file_once_with_its_hash():
    pytest.importorskip("skimage")
    import hashlib

    from varinf.compression.lossy import photos

    got = photos.packaged_photos(sources=("builtin",), repeat={"builtin": 2})
    manifest = got.manifest()
    assert len(manifest) == len(got.images) // 2 and len({m["file"] for m in manifest}) == len(manifest)
    first = manifest[0]
    assert first["sha256"] == hashlib.sha256(open(first["file"], "rb").read()).hexdigest()
    assert all(m["name"].startswith("builtin/") for m in manifest)


def test_packaged_photos_report_missing_sources(monkeypatch):
    pytest.importorskip("skimage")
    from varinf.compression.lossy import photos

    monkeypatch.setattr(photos, "MATE_NATURE", photos.Path("/nonexistent"))
    got = photos.packaged_photos(sources=("builtin", "mate-nature"), repeat={"builtin": 2})
    assert got.missing == {"mate-nature": photos.SOURCES["mate-nature"]}
    half = len(got.images) // 2
    assert got.images[0] is got.images[half] and got.names[:half] == got.names[half:]
    assert all(img.dtype == np.uint8 and img.ndim == 3 for img in got.images)
    with pytest.raises(ValueError, match="unknown photo source"):
        photos.packaged_photos(sources=("kodak",))


def test_a_non_finite_batch_skips_the_update(tmp_path, picture, monkeypatch):
    from varinf.compression.lossy.patches import PatchSampler

    clean = PatchSampler.sample

    def poisoned(self, *args, **kwargs):
        x = clean(self, *args, **kwargs)
        x[0, 0, 0, 0] = float("nan")
        return x

    monkeypatch.setattr(PatchSampler, "sample", poisoned)
    train = TrainConfig(steps=1, batch_size=1, patch_size=64, log_every=1)
    train_codec(TINY, [picture], tmp_path, train, progress=False)
    assert json.loads((tmp_path / "train.log").read_text())["skipped"] == 1
    torch.manual_seed(train.seed)
    fresh = ImageCodec(TINY)  # the initial weights of the run
    trained = load_codec(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), trained.state_dict().values()))
