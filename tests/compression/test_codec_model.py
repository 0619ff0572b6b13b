"""The trainable codec: gradients, noise vs rounding, gain interpolation, GDN, resumable training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from varinf.compression import CodecConfig, ImageCodec, TrainConfig, load_codec, rd_loss, train_codec
from varinf.compression.lossy.gain import GainUnits
from varinf.compression.lossy.gdn import GDN

from .conftest import TINY


@pytest.mark.parametrize("prior", ["hyperprior", "factorized"])
def test_gradients_reach_every_parameter(prior):
    codec = ImageCodec(CodecConfig(**{**TINY.__dict__, "prior": prior})).train()
    x = torch.rand(2, 3, 64, 64)
    q = torch.tensor([0.0, 2.0])
    rd_loss(codec(x, q), x, torch.tensor([0.01, 0.05])).loss.backward()
    missing = [n for n, p in codec.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    # the gains of the unused level 1 get no gradient; every other parameter must
    assert missing == [] or set(missing) <= {"gains.log_gain", "gains.log_inverse_gain"}
    assert codec.gains.log_gain.grad[1].abs().sum() == 0 and codec.gains.log_gain.grad[0].abs().sum() > 0


def test_estimated_rate_is_the_likelihood_of_rounded_latents(tiny_codec):
    """Eval mode rounds: the same input gives the same rate; training mode adds noise."""
    x = torch.rand(1, 3, 64, 64)
    q = torch.tensor([1.0])
    with torch.no_grad():
        a, b = tiny_codec(x, q).bits, tiny_codec(x, q).bits
        tiny_codec.train()
        c = tiny_codec(x, q).bits
        tiny_codec.eval()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_gain_interpolation_hits_the_trained_levels():
    units = GainUnits(3, 5, [-1.0, 0.0, 1.0])
    with torch.no_grad():
        units.log_gain.add_(torch.randn(3, 5) * 0.1)
    g, _ = units(torch.tensor([0.0, 1.0, 2.0, 0.5]))
    torch.testing.assert_close(g[:3, :, 0, 0], torch.exp(units.log_gain))
    torch.testing.assert_close(g[3, :, 0, 0], torch.exp(units.log_gain[:2].mean(0)))  # geometric midpoint
    with pytest.raises(ValueError, match="quality"):
        units(torch.tensor([2.5]))


def test_gdn_and_igdn_are_near_inverses_at_initialization():
    x = torch.randn(2, 4, 6, 6) * 0.3
    y = GDN(4, inverse=True)(GDN(4)(x))
    assert torch.allclose(x, y, atol=0.02)


def test_training_is_exactly_resumable(tmp_path, picture):
    cfg = CodecConfig(**{**TINY.__dict__, "lambdas": (0.01, 0.04)})
    train = TrainConfig(steps=4, batch_size=2, patch_size=64, checkpoint_every=2, log_every=2)
    train_codec(cfg, [picture], tmp_path / "straight", train, progress=False)
    train_codec(cfg, [picture], tmp_path / "resumed", train, progress=False, until=2)  # "interrupted"
    result = train_codec(cfg, [picture], tmp_path / "resumed", train, progress=False)
    assert result.steps == 4
    a, b = load_codec(tmp_path / "straight"), load_codec(tmp_path / "resumed")
    assert a.model_id() == b.model_id()
    log = [json.loads(line) for line in (tmp_path / "resumed" / "train.log").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4] and all(np.isfinite(r["loss"]) for r in log)


def test_resuming_with_another_architecture_is_refused(tmp_path, picture):
    train = TrainConfig(steps=1, batch_size=1, patch_size=64)
    train_codec(TINY, [picture], tmp_path, train, progress=False)
    other = CodecConfig(**{**TINY.__dict__, "channels": 4})
    with pytest.raises(ValueError, match="another configuration"):
        train_codec(other, [picture], tmp_path, train, progress=False)


def test_saved_weights_are_checked_on_load(tmp_path, tiny_codec):
    from varinf.compression import save_codec

    save_codec(tiny_codec, tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["model_id"] = "00" * 8
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="model id"):
        load_codec(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_codec(tmp_path / "nowhere")
