"""Encoder and decoder networks: the MLPs of the IWAE paper and a small convolutional pair.

Shapes: an encoder maps ``(B, *data_shape) -> (B, 2*latent)`` (mean and pre-softplus scale, the
:class:`varinf.families.AmortizedNormal` contract); a decoder maps ``(*batch, latent) -> (*batch, P,
*data_shape)`` where ``P`` is the likelihood's number of parameters per pixel. Decoders accept any number
of leading batch dimensions (importance samples x observations).

References: Burda, Grosse & Salakhutdinov 2016 (arXiv:1509.00519), section 5: two deterministic layers of
200 tanh units and 50 latents (one stochastic layer); 200-200 / 100 and 100-100 / 50 for two stochastic layers.
"""

from __future__ import annotations

import itertools
import math

from torch import Tensor, nn

__all__ = ["ConvDecoder", "ConvEncoder", "mlp", "mlp_decoder", "mlp_encoder"]

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "silu": nn.SiLU}


def mlp(sizes: tuple[int, ...], activation: str = "tanh") -> nn.Sequential:
    """``Linear`` layers through ``sizes`` with ``activation`` between them (none after the last)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def mlp_encoder(data_shape: tuple[int, ...], hidden: tuple[int, ...], latent: int, activation: str = "tanh"):
    """Flatten, then ``hidden`` layers, then ``2*latent`` outputs."""
    d = math.prod(data_shape)
    return nn.Sequential(nn.Flatten(-len(data_shape)), mlp((d, *hidden, 2 * latent), activation))


def mlp_decoder(
    data_shape: tuple[int, ...], hidden: tuple[int, ...], latent: int, num_params: int, activation: str = "tanh"
):
    """``latent`` inputs, ``hidden`` layers, then ``P * prod(data_shape)`` outputs reshaped to ``(P, *data_shape)``."""
    d = math.prod(data_shape)
    return nn.Sequential(
        mlp((latent, *hidden, num_params * d), activation), nn.Unflatten(-1, (num_params, *data_shape))
    )


def _check_image_shape(data_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(data_shape) != 3 or data_shape[1] % 4 or data_shape[2] % 4:
        raise ValueError(f"conv networks need data_shape (C, H, W) with H, W divisible by 4, got {data_shape}")
    return data_shape  # type: ignore[return-value]


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (32, 64 channels), a 256-unit layer, ``2*latent`` outputs."""

    def __init__(self, data_shape: tuple[int, ...], latent: int, channels: int = 32, hidden: int = 256):
        super().__init__()
        c, h, w = _check_image_shape(data_shape)
        self.data_shape = tuple(data_shape)
        self.net = nn.Sequential(
            nn.Conv2d(c, channels, 4, 2, 1),
            nn.ELU(),
            nn.Conv2d(channels, 2 * channels, 4, 2, 1),
            nn.ELU(),
            nn.Flatten(),
            nn.Linear(2 * channels * (h // 4) * (w // 4), hidden),
            nn.ELU(),
            nn.Linear(hidden, 2 * latent),
        )

    def forward(self, x: Tensor) -> Tensor:
        batch = x.shape[: -len(self.data_shape)]
        return self.net(x.reshape(-1, *self.data_shape)).reshape(*batch, -1)


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder` with transposed convolutions; output ``(*batch, P, C, H, W)``."""

    def __init__(
        self, data_shape: tuple[int, ...], latent: int, num_params: int, channels: int = 32, hidden: int = 256
    ):
        super().__init__()
        c, h, w = _check_image_shape(data_shape)
        self.data_shape, self.num_params, self.latent = tuple(data_shape), int(num_params), int(latent)
        self.net = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.ELU(),
            nn.Linear(hidden, 2 * channels * (h // 4) * (w // 4)),
            nn.ELU(),
            nn.Unflatten(1, (2 * channels, h // 4, w // 4)),
            nn.ConvTranspose2d(2 * channels, channels, 4, 2, 1),
            nn.ELU(),
            nn.ConvTranspose2d(channels, num_params * c, 4, 2, 1),
        )

    def forward(self, z: Tensor) -> Tensor:
        batch = z.shape[:-1]
        h = self.net(z.reshape(-1, self.latent))
        return h.reshape(*batch, self.num_params, *self.data_shape)
