"""Tiny VAEs and data for the VAE tests (seconds, no files)."""

from __future__ import annotations

import pytest
import torch

from varinf.vae import VAE, VAEConfig

TINY = {
    "mlp": VAEConfig(data_shape=(1, 4, 4), latents=(3,), hidden=((16,),)),
    "two_layer": VAEConfig(data_shape=(1, 4, 4), latents=(4, 2), hidden=((16,), (8,))),
    "conv": VAEConfig(data_shape=(1, 8, 8), architecture="conv", latents=(3,), hidden=((16,),)),
    "vamp": VAEConfig(data_shape=(1, 4, 4), latents=(3,), hidden=((16,),), prior="vamp", prior_components=5),
    "flow": VAEConfig(data_shape=(1, 4, 4), latents=(3,), hidden=((16,),), prior="flow", flow_transforms=1),
    "logistic": VAEConfig(data_shape=(1, 4, 4), latents=(3,), hidden=((16,),), likelihood="logistic"),
    "gaussian": VAEConfig(data_shape=(1, 4, 4), latents=(3,), hidden=((16,),), likelihood="gaussian"),
}


def tiny_images(n: int = 64, shape=(1, 4, 4), seed: int = 0) -> torch.Tensor:
    """Two blurry prototypes plus noise, as uint8 images: structure a tiny VAE can learn quickly."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.stack([torch.linspace(0, 1, shape[-1]).expand(shape), torch.linspace(1, 0, shape[-1]).expand(shape)])
    which = torch.randint(0, 2, (n,), generator=g)
    x = protos[which] + 0.1 * torch.randn((n, *shape), generator=g)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


@pytest.fixture(params=sorted(TINY))
def tiny_vae(request) -> tuple[str, VAE]:
    torch.manual_seed(0)
    return request.param, VAE.from_config(TINY[request.param])
