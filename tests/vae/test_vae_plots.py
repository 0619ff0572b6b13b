"""Pictures are valid PNGs of the expected layout; bad input is named."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from varinf.vae import VAE, VAEConfig
from varinf.vae.plots import plot_latent_map, plot_rate_distortion, save_image_grid

from .conftest import TINY, tiny_images


def test_image_grid_layout(tmp_path):
    imgs = torch.randint(0, 256, (6, 1, 4, 5), dtype=torch.uint8)
    with Image.open(save_image_grid(imgs, tmp_path / "g.png", nrow=2, scale=1)) as im:
        assert im.size == (3 * (5 + 2) + 2, 2 * (4 + 2) + 2) and im.mode == "L"
        assert im.getpixel((2, 2)) == int(imgs[0, 0, 0, 0])  # first image's first pixel after the padding
    with pytest.raises(ValueError, match="uint8"):
        save_image_grid(imgs.float(), tmp_path / "bad.png")


def test_latent_map_and_rate_distortion(tmp_path):
    torch.manual_seed(0)
    two = VAE.from_config(VAEConfig(data_shape=(1, 4, 4), latents=(2,), hidden=((8,),)))
    many = VAE.from_config(TINY["mlp"])
    images, labels = tiny_images(50), torch.arange(50) % 10
    with Image.open(plot_latent_map(two, images, labels, tmp_path / "two.png", grid=5)) as a:
        with Image.open(plot_latent_map(many, images, None, tmp_path / "pca.png")) as b:
            assert a.width > 1.5 * b.width  # scatter + decoded grid vs scatter of principal components
    with Image.open(
        plot_rate_distortion([0.5, 1, 2], [20.0, 12.0, 6.0], [80.0, 90.0, 105.0], tmp_path / "rd.png")
    ) as im:
        assert im.format == "PNG"
