"""The bounds behave as the mathematics says: ELBO <= IWAE_K <= IWAE_K' on a trained model, and the
DReG gradient is an unbiased (lower-variance) estimator of the IWAE gradient."""

from __future__ import annotations

import pytest
import torch

from varinf.objectives import ELBO, IWAE
from varinf.vae import VAE, TrainConfig, VAEConfig, train

from .conftest import tiny_images


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.manual_seed(0)
    cfg = VAEConfig(data_shape=(1, 4, 4), latents=(2,), hidden=((16,),))
    tc = TrainConfig(epochs=4, batch_size=16, lr_schedule="constant", lr=3e-3, valid_k=10, checkpoint_every_s=None)
    run = tmp_path_factory.mktemp("bounds")
    result = train(run, cfg, tc, tiny_images(512), tiny_images(64, seed=1), progress=False)
    assert result.history[-1].elbo > result.history[0].elbo  # it learned something
    return result.vae


def test_elbo_below_iwae_k_below_iwae_kprime(trained):
    """E[L_1] <= E[L_5] <= E[L_50] (Burda et al. 2016, theorem 1), checked with paired standard errors."""
    x = trained.likelihood.prepare(tiny_images(64, seed=2), torch.Generator().manual_seed(0))
    xr = x.repeat(20, 1, 1, 1)
    with torch.no_grad():
        b1 = trained(xr, ELBO(analytic=False)).bound
        b5 = trained(xr, IWAE(num_particles=5)).bound
        b50 = trained(xr, IWAE(num_particles=50)).bound
    for lo, hi in ((b1, b5), (b5, b50)):
        d = hi - lo
        assert d.mean() > 4 * d.std() / d.numel() ** 0.5, (d.mean(), d.std())


def test_dreg_is_unbiased_and_reduces_variance():
    """Encoder gradients: mean(DReG) = mean(plain IWAE) within standard errors; STL (biased for IWAE,
    Tucker et al. 2019) is the control showing the test has power. Decoder gradients are identical."""
    torch.manual_seed(0)
    vae = VAE.from_config(VAEConfig(data_shape=(1, 4, 4), latents=(2,), hidden=((8,),)))
    x = vae.likelihood.prepare(tiny_images(4), torch.Generator().manual_seed(0)).repeat(100, 1, 1, 1)
    enc, dec = list(vae.encoder.parameters()), list(vae.decoder.parameters())

    def grads(gradient: str, groups: int = 12):
        torch.manual_seed(1)
        e, d = [], []
        for _ in range(groups):
            vae.zero_grad()
            vae(x, IWAE(num_particles=5, gradient=gradient)).loss.backward()
            e.append(torch.cat([p.grad.flatten() for p in enc]))
            d.append(torch.cat([p.grad.flatten() for p in dec]))
        return torch.stack(e), torch.stack(d)

    (er, dr), (ed, dd), (es, _) = grads("reparam"), grads("dreg"), grads("stl")
    torch.testing.assert_close(dd, dr)  # same draws: the model's gradient keeps the plain IWAE weights

    def mean_sq_z(a, b):
        s = (a.var(0) / len(a) + b.var(0) / len(b)).sqrt()
        keep = s > 0  # weights of always-zero pixels get no gradient at all
        return float((((a.mean(0) - b.mean(0)) / s)[keep] ** 2).mean())

    assert mean_sq_z(ed, er) < 2.0  # ~1 (t-distributed, 11 dof: 1.22) when unbiased
    assert mean_sq_z(es, er) > 10.0
    assert ed.var(0).sum() < 0.7 * er.var(0).sum()
