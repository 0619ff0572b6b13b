"""Likelihoods: the discretized logistic is a normalized, numerically stable pmf; data representations."""

from __future__ import annotations

import math

import pytest
import torch

from varinf.vae import DiscretizedLogistic, make_likelihood


def test_discretized_logistic_normalized_and_matches_cdf_differences():
    torch.manual_seed(0)
    loc = torch.randn(50, dtype=torch.float64)
    scale = torch.exp(torch.empty(50, dtype=torch.float64).uniform_(-6, 1))
    d = DiscretizedLogistic(loc, scale)
    torch.testing.assert_close(d.probs().sum(-1), torch.ones(50, dtype=torch.float64))
    k = torch.arange(256, dtype=torch.float64)
    c = 2 * k / 255 - 1
    cdf = lambda v: torch.sigmoid((v - loc[:, None]) / scale[:, None])
    upper = torch.where(k == 255, torch.ones(()), cdf(c + 1 / 255))
    lower = torch.where(k == 0, torch.zeros(()), cdf(c - 1 / 255))
    naive = upper - lower
    ok = naive > 1e-10  # where the naive difference is still accurate
    torch.testing.assert_close(d.probs()[ok], naive[ok], rtol=1e-6, atol=1e-12)


def test_discretized_logistic_extremes_are_finite():
    loc = torch.tensor([-30.0, 30.0, 0.0, 0.0])
    scale = torch.tensor([1e-3, 1e-3, 1e-4, 1e3])
    lp = DiscretizedLogistic(loc, scale).log_probs()
    assert torch.isfinite(lp).all()
    assert lp[0, 0] > -1e-3 and lp[1, 255] > -1e-3  # all mass at the edge bins
    mode = DiscretizedLogistic(torch.tensor([0.3]), torch.tensor([1e-4]))
    assert int(mode.probs().argmax()) == round((0.3 + 1) * 127.5) == int(mode.mode)
    torch.testing.assert_close(lp[3].exp().sum(), torch.tensor(1.0))


def test_discretized_logistic_samples_follow_pmf():
    torch.manual_seed(0)
    d = DiscretizedLogistic(torch.tensor([0.0]), torch.tensor([0.02]))
    s = d.sample((20000,))[:, 0]
    assert s.min() >= 0 and s.max() <= 255 and torch.equal(s, s.round())
    freq = torch.bincount(s.long(), minlength=256).float() / 20000
    p = d.probs()[0]
    assert (freq - p).abs().max() < 4 * math.sqrt(float(p.max()) / 20000)
    torch.testing.assert_close(s.mean(), d.mean[0], atol=0.2, rtol=0)


@pytest.mark.parametrize("name", ["bernoulli", "gaussian", "logistic"])
def test_likelihood_shapes_and_representation(name):
    lik = make_likelihood(name)
    images = torch.randint(0, 256, (3, 1, 4, 4), dtype=torch.uint8)
    x = lik.prepare(images, torch.Generator().manual_seed(0))
    h = torch.randn(5, 3, lik.num_params, 1, 4, 4)
    p = lik(h)
    assert p.batch_shape == (5, 3) and p.event_shape == (1, 4, 4)
    assert p.log_prob(x).shape == (5, 3) and torch.isfinite(p.log_prob(x)).all()
    back = lik.to_image(x)
    assert back.dtype == torch.uint8
    if name == "logistic":
        assert torch.equal(back, images) and lik.nats_offset(16) == 0
    if name == "gaussian":  # dequantized (k + u)/256 floors back to k; D log 256 makes nats discrete
        assert torch.equal(back, images) and math.isclose(lik.nats_offset(16), 16 * math.log(256))
    if name == "bernoulli":
        assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert lik.normalize(x).abs().max() <= 1.0 + 1e-6
    with pytest.raises(ValueError, match="uint8"):
        lik.prepare(images.float())
