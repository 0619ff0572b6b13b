"""Pictures of a VAE, saved as PNG (matplotlib's object API with the Agg canvas; no global pyplot state).

- :func:`save_image_grid` / :func:`plot_samples` / :func:`plot_reconstructions`: image grids (Pillow);
- :func:`plot_latent_map`: posterior means coloured by label, and for two latents the decoded grid
  :math:`\\text{mean}\\,p(x\\mid z)` over :math:`z` at standard-normal quantiles (Kingma & Welling 2014);
- :func:`plot_rate_distortion`: distortion against rate across :math:`\\beta`, with lines of constant ELBO;
- :func:`plot_history`: validation bounds during training.

All writes are atomic (rendered to memory, then renamed into place).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor

from ..utils import atomic_write_bytes, seeded
from .model import VAE

__all__ = [
    "plot_history",
    "plot_latent_map",
    "plot_rate_distortion",
    "plot_reconstructions",
    "plot_samples",
    "save_image_grid",
]


def _save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _grid(images: Tensor, nrow: int, pad: int = 2) -> np.ndarray:
    n, c, h, w = images.shape
    ncol = math.ceil(n / nrow)
    out = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), 128, dtype=np.uint8)
    arr = images.permute(0, 2, 3, 1).cpu().numpy()
    for i in range(n):
        r, col = divmod(i, ncol)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + col * (w + pad) : pad + col * (w + pad) + w] = arr[i]
    return out[..., 0] if c == 1 else out


def save_image_grid(images: Tensor, path: str | os.PathLike, nrow: int | None = None, scale: int = 2) -> Path:
    """Tile uint8 images ``(N, C, H, W)`` (C = 1 or 3) into one PNG, ``nrow`` rows, each pixel ``scale`` x ``scale``."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 images (N, 1|3, H, W), got {images.dtype} {tuple(images.shape)}")
    nrow = nrow or max(1, int(math.sqrt(images.shape[0])))
    img = Image.fromarray(_grid(images, nrow))
    img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def plot_samples(vae: VAE, path: str | os.PathLike, n: int = 64, seed: int = 0) -> Path:
    """Grid of ``n`` samples: the mean of :math:`p(x\\mid z)` at prior draws :math:`z\\sim p(z)`."""
    with seeded(seed):
        return save_image_grid(vae.sample(n), path)


def plot_reconstructions(vae: VAE, images: Tensor, path: str | os.PathLike, n: int = 16, seed: int = 0) -> Path:
    """Top row: the data as the model sees it (e.g. binarized); bottom row: reconstructions."""
    with seeded(seed):
        x = vae.likelihood.prepare(images[:n], torch.Generator().manual_seed(seed))
        both = torch.cat([vae.likelihood.to_image(x), vae.reconstruct(x)])
    return save_image_grid(both, path, nrow=2)


def plot_latent_map(
    vae: VAE, images: Tensor, labels: Tensor | None, path: str | os.PathLike, n: int = 2000, grid: int = 15
) -> Path:
    """Posterior means of ``n`` images coloured by label (first two principal components when D > 2) and,
    for a two-dimensional latent space, the decoded image at each point of a ``grid`` x ``grid`` quantile grid."""
    x = vae.likelihood.prepare(images[:n], torch.Generator().manual_seed(0))
    mu = vae.latent_means(x).double()
    two_d = mu.shape[-1] == 2 and vae.latent_dim == 2
    if not two_d:  # project onto the first two principal components
        centered = mu - mu.mean(0)
        _, _, v = torch.linalg.svd(centered, full_matrices=False)
        mu = centered @ v[:2].T
    fig = Figure(figsize=(10, 5) if two_d else (5, 5))
    ax = fig.add_subplot(1, 2 if two_d else 1, 1)
    c = None if labels is None else labels[:n].numpy()
    if c is None:
        ax.scatter(mu[:, 0].numpy(), mu[:, 1].numpy(), s=3)
    else:
        sc = ax.scatter(mu[:, 0].numpy(), mu[:, 1].numpy(), c=c, cmap="tab10", s=3)
        fig.colorbar(sc, ax=ax, ticks=range(10))
    ax.set_title("posterior means" + ("" if two_d else " (first 2 PCs)"))
    if two_d:
        q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.5 / grid, 1 - 0.5 / grid, grid))
        z = torch.cartesian_prod(q.flip(0), q)[:, [1, 0]]  # rows: z2 from high to low; columns: z1
        with torch.no_grad():
            imgs = vae.likelihood.to_image(vae.p_x(z.to(torch.get_default_dtype())).mean)
        ax2 = fig.add_subplot(1, 2, 2)
        ax2.imshow(_grid(imgs, grid, pad=0), cmap="gray", extent=(-2.5, 2.5, -2.5, 2.5))
        ax2.set_title("decoded mean at N(0,1) quantiles")
    fig.tight_layout()
    return _save_figure(fig, path)


def plot_rate_distortion(
    betas: Sequence[float],
    rates: Sequence[float],
    distortions: Sequence[float],
    path: str | os.PathLike,
    title: str = "",
) -> Path:
    """Distortion (nats) against rate (nats) for each β, with dashed lines of constant -ELBO = R + D."""
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(rates, distortions, "o-")
    for b, r, d in zip(betas, rates, distortions):
        ax.annotate(f"β={b:g}", (r, d), textcoords="offset points", xytext=(5, 5), fontsize=8)
    lo, hi = min(r + d for r, d in zip(rates, distortions)), max(r + d for r, d in zip(rates, distortions))
    rr = np.linspace(0, max(rates) * 1.05, 50)
    for level in np.linspace(lo, hi, 4):
        ax.plot(rr, level - rr, "k--", lw=0.5, alpha=0.5)
    ax.set_xlim(0, max(rates) * 1.1)
    ax.set_ylim(min(distortions) * 0.95, max(distortions) * 1.05)
    ax.set_xlabel("rate  E KL(q(z|x) || p(z))  [nats]")
    ax.set_ylabel("distortion  E[-log p(x|z)]  [nats]")
    ax.set_title((title or "rate-distortion across β") + "\n(dashed: constant -ELBO = rate + distortion)", fontsize=10)
    fig.tight_layout()
    return _save_figure(fig, path)


def plot_history(history: Sequence, path: str | os.PathLike) -> Path:
    """Validation NLL (IWAE bound) and -ELBO against epoch, from :class:`~varinf.vae.ValidationRecord` s."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot(1, 1, 1)
    ep = [r.epoch for r in history]
    ax.plot(ep, [r.nll for r in history], label="valid NLL (IWAE bound)")
    ax.plot(ep, [-r.elbo for r in history], label="valid -ELBO")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats")
    ax.legend()
    fig.tight_layout()
    return _save_figure(fig, path)
