r"""Honest test likelihoods: importance-sampled NLL with rate and distortion, in nats and bits/dim.

.. math::
    \log p(x) \approx \mathcal{L}_k(x) = \log \frac1k \sum_{i=1}^k \frac{p(x\mid z_i)\,p(z_i)}{q(z_i\mid x)},
    \quad z_i \sim q(z\mid x),

the IWAE bound (Burda et al. 2016, arXiv:1509.00519) with large ``k`` (5000 in the paper): a stochastic
lower bound on :math:`\log p(x)`, so the reported NLL :math:`-\mathcal{L}_k` errs on the pessimistic side.
The ``k`` draws are taken in chunks (the core :class:`~varinf.objectives.IWAE` with ``k = chunk``) and
combined with one log-sum-exp, so memory stays at ``chunk x batch x pixels``.

Rate :math:`E_x KL(q(z\mid x)\,\|\,p(z))` and distortion :math:`E_x E_q[-\log p(x\mid z)]` come from the core
:class:`~varinf.objectives.ELBO` with ``prior=`` (analytic KL where torch has it); ELBO = -(rate + distortion).
Bits/dim = nats / (D ln 2) with D the number of observed dimensions. For a Gaussian likelihood on
dequantized data, :math:`D\log 256` is added to NLL, ELBO and distortion (see :mod:`.likelihoods`), so every
number is a code length of the discrete image.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from ..objectives import ELBO, IWAE
from ..utils import seeded
from ..utils.progress_bars import track
from .model import VAE

__all__ = ["Evaluation", "evaluate"]


@dataclass(frozen=True)
class Evaluation:
    """Mean per-example estimates in nats (``*_bpd``: bits per dimension)."""

    nll: float
    nll_stderr: float
    elbo: float
    rate: float
    distortion: float
    k: int
    num_examples: int
    num_dims: int

    def _bpd(self, nats: float) -> float:
        return nats / (self.num_dims * math.log(2))

    @property
    def nll_bpd(self) -> float:
        return self._bpd(self.nll)

    @property
    def rate_bpd(self) -> float:
        return self._bpd(self.rate)

    @property
    def distortion_bpd(self) -> float:
        return self._bpd(self.distortion)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(nll_bpd=self.nll_bpd, rate_bpd=self.rate_bpd, distortion_bpd=self.distortion_bpd)
        return d

    def summary(self) -> str:
        return (
            f"test NLL (IWAE bound, k={self.k}, n={self.num_examples}): {self.nll:.2f} ± {self.nll_stderr:.2f} nats "
            f"({self.nll_bpd:.4f} bits/dim)\n"
            f"-ELBO {-self.elbo:.2f} nats = rate {self.rate:.2f} + distortion {self.distortion:.2f} "
            f"({self.rate_bpd:.4f} + {self.distortion_bpd:.4f} bits/dim)"
        )


@torch.no_grad()
def _log_weights(vae: VAE, x: Tensor, k: int, chunk: int) -> Tensor:
    q, ll, prior = vae.q(x), vae.log_likelihood(x), vae.p_z()
    parts, done = [], 0
    while done < k:
        n = min(chunk, k - done)
        parts.append(IWAE(num_particles=n).loss(q, ll, prior).log_weights)
        done += n
    return torch.cat(parts)  # (k, B)


@torch.no_grad()
def evaluate(
    vae: VAE,
    x: Tensor,
    k: int = 5000,
    batch_size: int = 100,
    max_elements: int = 2**24,
    elbo_particles: int = 100,
    seed: int = 0,
    progress: bool | None = None,
) -> Evaluation:
    """Estimate test NLL (``k`` importance samples), ELBO, rate and distortion on ``x`` (data representation).

    Args:
        vae: the model (put in eval mode).
        x: ``(N, *data_shape)`` observations, e.g. ``vae.likelihood.prepare(images, generator)``.
        k: importance samples per example.
        batch_size: examples per pass.
        max_elements: cap on ``chunk * batch * pixels`` per decoder call (memory, ~4 bytes each, times a few).
        elbo_particles: draws for the rate/distortion estimate.
        seed: the draws come from a forked RNG seeded with this (results are reproducible and the caller's
            random stream is untouched).
        progress: a bar of batches done (default: only on a terminal; :mod:`varinf.utils.progress_bars`).
    """
    if k < 1 or x.shape[0] < 1:
        raise ValueError(f"need k >= 1 and at least one example (k={k}, {x.shape[0]} examples)")
    vae.eval()
    chunk = max(1, min(k, max_elements // (batch_size * vae.num_dims * vae.likelihood.num_params)))
    offset = vae.likelihood.nats_offset(vae.num_dims)
    nll, rate, dist = [], [], []
    with seeded(seed):
        starts = range(0, x.shape[0], batch_size)
        for i in track(starts, f"NLL (k={k})", unit="batches", enabled=progress):
            xb = x[i : i + batch_size]
            lw = _log_weights(vae, xb, k, chunk)
            nll.append(-(torch.logsumexp(lw, 0) - math.log(k)) + offset)
            est = ELBO(num_particles=elbo_particles).loss(vae.q(xb), vae.log_likelihood(xb), vae.p_z())
            rate.append(est.rate)
            dist.append(est.distortion + offset)
    nll_t, rate_t, dist_t = torch.cat(nll).double(), torch.cat(rate).double(), torch.cat(dist).double()
    n = nll_t.numel()
    return Evaluation(
        nll=float(nll_t.mean()),
        nll_stderr=float(nll_t.std() / math.sqrt(n)) if n > 1 else float("nan"),
        elbo=float(-(rate_t + dist_t).mean()),
        rate=float(rate_t.mean()),
        distortion=float(dist_t.mean()),
        k=k,
        num_examples=n,
        num_dims=vae.num_dims,
    )
