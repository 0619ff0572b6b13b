"""Bits-back coding (BB-ANS): exact round trips, bins, and net code length vs -ELBO on MNIST."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr

from varinf.compression import BitsBackCodec, LatentBins, load_bitsback
from varinf.compression.lossless.bitsback import batch_sizes
from varinf.vae import VAE, VAEConfig


def tiny_vae(likelihood: str, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    cfg = VAEConfig(data_shape=(1, 4, 5), latents=(3,), hidden=((16,),), likelihood=likelihood)
    return VAE.from_config(cfg).eval()


CODECS = {
    (lik, bits): BitsBackCodec(tiny_vae(lik), latent_bits=bits, initial_words=8)
    for lik in ("bernoulli", "logistic")
    for bits in (2, 8, 12)
}


@settings(max_examples=60, deadline=None)
@given(
    lik=st.sampled_from(["bernoulli", "logistic"]),
    bits=st.sampled_from([2, 8, 12]),
    n=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    sparse=st.booleans(),
)
def test_round_trip_is_exact(lik, bits, n, seed, sparse):
    """Any image sequence decodes to itself, whatever the model thinks of it (also improbable images)."""
    codec = CODECS[lik, bits]
    rng = np.random.default_rng(seed)
    x = rng.integers(0, codec.symbols, (n, 1, 4, 5))
    if sparse:  # long runs of one value, e.g. digits on a blank background
        x = np.where(rng.random(x.shape) < 0.9, 0, x)
    coded = codec.encode(x)
    np.testing.assert_array_equal(codec.decode(coded.words, n, coded.untouched_words), x)
    # the stack grew by the ideal net cost of the images, up to the coder's last-word rounding
    assert abs(coded.net_bits - coded.image_bits.sum()) <= 64 + 0.001 * abs(coded.image_bits.sum())


def test_bins_have_equal_prior_mass_and_posterior_masses_are_close():
    bins = LatentBins.standard(6)
    prior_mass = np.diff(ndtr(bins.std_edges))
    np.testing.assert_allclose(prior_mass, 1 / 64, atol=1e-5)  # edges are Phi^-1(k/K) rounded to 2**-16
    assert np.all(np.diff(bins.std_centres) > 0)
    assert np.all((bins.std_centres > bins.std_edges[:-1]) & (bins.std_centres < bins.std_edges[1:]))
    loc, scale = np.array([0.3, -2.0, 4.0, 0.0]), np.array([0.05, 1.0, 0.5, 1.0])
    w = bins.posterior_pmfs(loc, scale)
    assert w.dtype == np.int64 and w.min() >= 1 and np.all(w.sum(axis=1) == 2**24)
    expected = ndtr((bins.std_edges[None, 1:] - loc[:, None]) / scale[:, None]) - ndtr(
        (bins.std_edges[None, :-1] - loc[:, None]) / scale[:, None]
    )
    # integer masses: Phi's argument on a 2**-12 grid, one unit of 2**-24 reserved per bin
    np.testing.assert_allclose(w / 2**24, expected, atol=2e-4)
    # a posterior equal to the prior puts about 1/K on every bin: bits back = prior bits, net latent cost ~0
    np.testing.assert_allclose(w[3] / 2**24, 1 / 64, atol=1e-4)


def test_batches_grow_with_the_images_already_coded():
    for n, cap in ((1, 256), (7, 256), (10_000, 256), (1000, 3)):
        sizes = batch_sizes(n, cap)
        assert sum(sizes) == n and max(sizes) <= cap and min(sizes) >= 1
        done = np.cumsum([0, *sizes[:-1]])
        assert all(s <= max(1, d // 4) for s, d in zip(sizes, done))  # never more than a quarter of what is coded
    assert max(batch_sizes(10_000, 256)) == 256 and len(batch_sizes(10_000, 256)) < 80


def test_integer_model_tracks_the_float_model():
    """The integer VAE's posterior means/scales and pixel probabilities are those of the float VAE to ~1e-3."""
    codec = CODECS["bernoulli", 8]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (50, 20))
    with torch.no_grad():
        q = codec.vae.q(torch.from_numpy(x).float().reshape(50, 1, 4, 5)).base_dist
    loc, inv_scale = codec.net.posterior(x)
    np.testing.assert_allclose(loc / 2**16, q.loc.numpy(), atol=2e-3)
    np.testing.assert_allclose(2**16 / inv_scale, q.scale.numpy(), rtol=2e-3)
    z = rng.integers(0, 256, (50, 3))
    with torch.no_grad():
        p1 = codec.vae.p_x(torch.from_numpy(codec.bins.std_centres[z]).float()).base_dist.probs.reshape(-1)
    np.testing.assert_allclose((codec.net.likelihood_excess(z)[:, 1] + 1) / 2**24, p1.numpy(), atol=2e-3)


def test_model_id_hashes_the_integers():
    a = BitsBackCodec(tiny_vae("bernoulli"), latent_bits=8)
    assert a.model_id() == BitsBackCodec(tiny_vae("bernoulli"), latent_bits=8).model_id()
    assert a.model_id() != BitsBackCodec(tiny_vae("bernoulli"), latent_bits=6).model_id()
    vae = tiny_vae("bernoulli")
    with torch.no_grad():
        vae.decoder[0][0].weight[0, 0] += 2**-15  # one unit of the integer weights
    assert BitsBackCodec(vae, latent_bits=8).model_id() != a.model_id()


@pytest.mark.parametrize("likelihood", ["bernoulli", "logistic"])
def test_conv_vaes_code_exactly_and_track_the_float_model(likelihood):
    torch.manual_seed(0)
    cfg = VAEConfig(data_shape=(1, 8, 8), architecture="conv", latents=(4,), hidden=((16,),), likelihood=likelihood,
                    activation="elu")  # fmt: skip
    codec = BitsBackCodec(VAE.from_config(cfg).eval(), latent_bits=8, initial_words=8)
    x = np.random.default_rng(0).integers(0, codec.symbols, (12, 1, 8, 8))
    coded = codec.encode(x)
    np.testing.assert_array_equal(codec.decode(coded.words, 12, coded.untouched_words), x)
    with torch.no_grad():
        q = codec.vae.q(torch.from_numpy(x).float()).base_dist
    loc, inv_scale = codec.net.posterior(x.reshape(12, -1))
    np.testing.assert_allclose(loc / 2**16, q.loc.numpy(), atol=2e-3)
    np.testing.assert_allclose(2**16 / inv_scale, q.scale.numpy(), rtol=2e-3)


def test_unsupported_models_are_refused():
    vae = tiny_vae("bernoulli")
    vae.decoder[0][1] = torch.nn.LayerNorm(16)
    with pytest.raises(ValueError, match="unsupported layer LayerNorm"):
        BitsBackCodec(vae)
    with pytest.raises(ValueError, match="discrete pixel model"):
        BitsBackCodec(VAE.from_config(VAEConfig(data_shape=(1, 4, 4), latents=(2,), hidden=((4,),),
                                                likelihood="gaussian")))  # fmt: skip


def test_shipped_model_round_trips_random_binary_images():
    codec = load_bitsback()
    x = (np.random.default_rng(1).random((5, 1, 28, 28)) < 0.2).astype(np.uint8)
    np.testing.assert_array_equal(codec.decode(codec.encode(x).words, 5), x)


def test_bad_images_are_refused():
    codec = CODECS["bernoulli", 8]
    with pytest.raises(ValueError, match="shape"):
        codec.encode(np.zeros((2, 1, 5, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        codec.encode(np.full((2, 1, 4, 5), 2, dtype=np.uint8))
    with pytest.raises(ValueError, match="integer"):
        codec.encode(np.zeros((2, 1, 4, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="Gaussian prior"):
        BitsBackCodec(VAE.from_config(VAEConfig(data_shape=(1, 4, 4), latents=(2,), hidden=((4,),), prior="vamp")))


def test_net_code_length_matches_negative_elbo_on_mnist(shared_data):
    """1000 binarized MNIST test images on one stack: net bits per image within 1% of -ELBO (in bits),
    estimated with 64 posterior samples and the analytic KL on the same images; decoding is exact."""
    from varinf.data.mnist import fixed_binarize, load_mnist

    codec = load_bitsback()
    images = load_mnist(shared_data / "mnist").test.images[:1000]
    x = fixed_binarize(images, seed=0)
    with torch.no_grad():
        q = codec.vae.q(x)
        distortion = -codec.vae.p_x(q.sample((64,))).log_prob(x).mean(0)
        rate = torch.distributions.kl_divergence(q, codec.vae.p_z())
    neg_elbo_bits = float((distortion + rate).mean()) / np.log(2)
    symbols = x.numpy().astype(np.uint8)
    coded = codec.encode(symbols)
    net_per_image = coded.net_bits / len(symbols)
    assert abs(net_per_image / neg_elbo_bits - 1) <= 0.01, (net_per_image, neg_elbo_bits)
    assert net_per_image / 784 <= 0.19  # bits/dim, BB-ANS's published figure
    np.testing.assert_array_equal(codec.decode(coded.words, len(symbols)), symbols)
