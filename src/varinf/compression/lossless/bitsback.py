r"""Lossless bits-back coding with a VAE (BB-ANS; Townsend, Bird & Barber 2019, arXiv:1901.04866).

Every image :math:`x_i` of a sequence is coded onto *one* ANS stack in three moves::

    encode x_i:   z  <- pop   Q(z | x_i)        (takes bits off the stack: the "bits back")
                  x_i -> push P(x_i | ẑ)        (pixel likelihood at the bin centre ẑ)
                  z  -> push  P(z) = 1/K        (max-entropy bins: every bin has prior mass 1/K)
    decode x_i:   the three moves reversed (pop z with the prior, pop x_i, push z with Q(z | x_i))

Latents are discretized per dimension into :math:`K = 2^{b}` bins of equal *prior* mass (edges
:math:`\mu_p + \sigma_p\,\Phi^{-1}(k/K)`, centres at the quantiles :math:`(k + 1/2)/K`), so the prior code is
uniform, and the posterior of a diagonal Gaussian :math:`q(z\mid x)` is its mass on each bin. The net cost of an
image, in bits, is

.. math::

    \ell(x_i) = -\log_2 P(x_i\mid\hat z) - \log_2 P(\hat z) + \log_2 Q(\hat z\mid x_i),
    \qquad E_Q[\ell] \approx -\mathrm{ELBO}(x_i)/\ln 2,

so the stack grows by about :math:`-\mathrm{ELBO}` per image. The first pop needs bits to take: the stack is
seeded with ``initial_words`` pseudo-random words (fixed seed), which stay in the file (the usual "initial bits"
overhead, amortized over the sequence) and let the decoder check, at the end, that it is back at the seed.

Determinism: encoder and decoder evaluate the networks on one image at a time on one thread and build the
integer pmfs (:func:`~varinf.compression.coding.tables.quantize_pmf`, 24-bit) from float64 copies of the outputs, so
the same build of varinf/torch reproduces every pmf exactly. Across different CPUs or torch builds a pmf may
differ in its last bit; :func:`~varinf.compression.lossless.lossless_file.decompress_lossless` then fails its CRC check
rather than returning wrong data.

Pixel models: Bernoulli (binarized images, values {0, 1}) and the discretized logistic (values 0..255).

Example::

    >>> import numpy as np
    >>> from varinf.vae import VAE, VAEConfig
    >>> from varinf.compression.lossless.bitsback import BitsBackCodec
    >>> vae = VAE.from_config(VAEConfig(data_shape=(1, 4, 4), latents=(3,), hidden=((8,),))).eval()
    >>> codec = BitsBackCodec(vae, latent_bits=8)
    >>> x = np.random.default_rng(0).integers(0, 2, (5, 1, 4, 4)).astype(np.uint8)
    >>> coded = codec.encode(x)
    >>> bool((codec.decode(coded.words, 5) == x).all())
    True
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import ndtr, ndtri
from torch.distributions import Bernoulli, Independent, Normal

from ...utils import num_threads
from ..coding.ans import AnsStack, CodingError
from ..coding.tables import PRECISION, quantize_pmf

__all__ = ["BitsBackCodec", "BitsBackResult", "LatentBins"]


@dataclass(frozen=True, eq=False)
class LatentBins:
    r"""``K = 2**bits`` max-entropy bins of a diagonal Gaussian prior :math:`N(\mu_p, \sigma_p^2)` per dimension.

    Attributes:
        bits: :math:`\log_2 K`.
        std_edges: ``(K + 1,)`` float64 standard-normal edges :math:`\Phi^{-1}(k/K)` (``±inf`` at the ends).
        std_centres: ``(K,)`` float64 standard-normal quantiles :math:`\Phi^{-1}((k + 1/2)/K)`.
    """

    bits: int
    std_edges: np.ndarray
    std_centres: np.ndarray

    @classmethod
    def standard(cls, bits: int) -> LatentBins:
        if not 1 <= bits <= 16:
            raise ValueError(f"latent_bits must lie in [1, 16], got {bits}")
        k = 1 << bits
        edges = ndtri(np.arange(k + 1, dtype=np.float64) / k)
        centres = ndtri((np.arange(k, dtype=np.float64) + 0.5) / k)
        return cls(int(bits), edges, centres)

    @property
    def size(self) -> int:
        return 1 << self.bits

    def posterior_pmfs(self, loc: np.ndarray, scale: np.ndarray, prior_loc, prior_scale) -> np.ndarray:
        r"""``(D, K)`` float64 masses :math:`Q(\text{bin } k)` of :math:`N(\text{loc}_d, \text{scale}_d^2)`.

        Computed in the prior's standard coordinates; on the right of the mean as a difference of upper
        tails, so that small masses keep their relative accuracy on both sides.
        """
        m = (loc - prior_loc) / prior_scale
        s = scale / prior_scale
        a = (self.std_edges[None, :] - m[:, None]) / s[:, None]  # (D, K + 1) standardized edges
        cdf, survival = ndtr(a), ndtr(-a)
        lower = cdf[:, 1:] - cdf[:, :-1]
        upper = survival[:, :-1] - survival[:, 1:]
        return np.where(a[:, :-1] > 0, upper, lower)


@dataclass
class BitsBackResult:
    """A coded sequence.

    Attributes:
        words: the final stack (uint32), seed included.
        num_images: images coded.
        initial_bits: bits of the seed the stack started with.
        total_bits: bits of ``words`` (a multiple of 32).
        image_bits: ``(N,)`` ideal net bits of each image, :math:`-\\log_2 P(x|\\hat z) - \\log_2 P(\\hat z) +
            \\log_2 Q(\\hat z|x)` with the coder's integer pmfs.
    """

    words: np.ndarray
    num_images: int
    initial_bits: int
    total_bits: int
    image_bits: np.ndarray

    @property
    def net_bits(self) -> int:
        """Bits the images added to the stack: ``total_bits - initial_bits``."""
        return self.total_bits - self.initial_bits


def seed_words(count: int) -> np.ndarray:
    """The fixed pseudo-random seed of the stack (last word nonzero, as the coder requires)."""
    words = np.random.default_rng(0x5EED).integers(0, 2**32, count, dtype=np.uint64).astype(np.uint32)
    if count:
        words[-1] |= np.uint32(1 << 31)
    return words


class BitsBackCodec:
    """BB-ANS over a trained :class:`varinf.vae.VAE` with a diagonal Gaussian posterior and prior.

    Args:
        vae: the model (single stochastic layer; Bernoulli or discretized-logistic likelihood).
        latent_bits: :math:`\\log_2` of the number of prior bins per latent dimension.
        initial_words: 32-bit words of seed on the stack before the first image.
    """

    def __init__(self, vae, latent_bits: int = 12, initial_words: int = 32):
        self.vae = vae.eval()
        self.bins = LatentBins.standard(latent_bits)
        self.initial_words = int(initial_words)
        prior = vae.p_z()
        base = getattr(prior, "base_dist", None)
        if not isinstance(prior, Independent) or not isinstance(base, Normal):
            raise ValueError(f"bits-back coding needs a diagonal Gaussian prior, got {type(prior).__name__}")
        self.prior_loc = base.loc.detach().double().numpy().copy()
        self.prior_scale = base.scale.detach().double().numpy().copy()
        self.data_shape = tuple(vae.data_shape)
        self.num_dims = int(np.prod(self.data_shape))
        self.likelihood = type(vae.likelihood).__name__
        self.symbols = 2 if self.likelihood == "BernoulliLikelihood" else 256
        if self.likelihood not in ("BernoulliLikelihood", "DiscretizedLogisticLikelihood"):
            raise ValueError(f"bits-back coding needs a discrete pixel model, got {self.likelihood}")

    # ------------------------------------------------------------------ identity
    def model_id(self) -> bytes:
        """8 bytes: SHA-256 of the VAE config, the weights and the coding settings."""
        h = hashlib.sha256()
        config = getattr(self.vae, "config", None)
        h.update(json.dumps(config.to_dict() if config is not None else None, sort_keys=True).encode())
        for name, t in sorted(self.vae.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().float().contiguous().numpy().tobytes())
        h.update(f"bits={self.bins.bits}".encode())
        return h.digest()[:8]

    def table_digest(self) -> int:
        """CRC32 of the bin edges as float64 (a platform with another ``ndtri`` would derive other bins)."""
        return zlib.crc32(self.bins.std_edges[1:-1].astype("<f8").tobytes())

    # ------------------------------------------------------------------ integer pmfs of one image
    def _posterior_weights(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            q = self.vae.q(self._prepare(x))
        loc = q.base_dist.loc[0].double().numpy()
        scale = q.base_dist.scale[0].double().numpy()
        return quantize_pmf(self.bins.posterior_pmfs(loc, scale, self.prior_loc, self.prior_scale))

    def _likelihood_weights(self, z_index: np.ndarray) -> np.ndarray:
        std = self.bins.std_centres[z_index]
        z = torch.from_numpy(self.prior_loc + self.prior_scale * std).float()[None]
        with torch.no_grad():
            p = self.vae.p_x(z)
        base = p.base_dist
        if isinstance(base, Bernoulli):
            logits = base.logits[0].double().reshape(-1).numpy()
            p1 = 1.0 / (1.0 + np.exp(-logits))
            pmf = np.stack([1.0 - p1, p1], axis=1)
        else:  # discretized logistic: log-probabilities of all 256 values
            pmf = np.exp(base.log_probs()[0].double().reshape(-1, self.symbols).numpy())
        return quantize_pmf(pmf)

    def _prepare(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x.astype(np.float32)).reshape(1, *self.data_shape)

    def check_images(self, images: np.ndarray) -> np.ndarray:
        """``(N, *data_shape)`` integer images with values in ``[0, symbols)`` (as int64), or ValueError."""
        images = np.asarray(images)
        if images.ndim == len(self.data_shape) and images.shape == self.data_shape:
            images = images[None]
        if images.shape[1:] != self.data_shape:
            raise ValueError(
                f"expected images of shape (N, {', '.join(map(str, self.data_shape))}), got {images.shape}"
            )
        if images.dtype.kind not in "iub":
            raise ValueError(f"expected integer pixel values, got dtype {images.dtype}")
        if images.size and (images.min() < 0 or images.max() >= self.symbols):
            raise ValueError(f"pixel values must lie in [0, {self.symbols - 1}] for this model")
        return images.astype(np.int64)

    # ------------------------------------------------------------------ coding
    def encode(self, images: np.ndarray, progress=None) -> BitsBackResult:
        """Code ``images`` ``(N, *data_shape)`` in order on one stack (the seed first)."""
        images = self.check_images(images)
        stack = AnsStack(seed_words(self.initial_words))
        initial = stack.num_bits()
        k = self.bins.size
        prior_bits = self.bins.bits * self.prior_loc.size
        image_bits = np.empty(len(images))
        with num_threads(1):  # the pmfs must not depend on the caller's thread count
            for i, x in enumerate(images):
                wq = self._posterior_weights(x)
                z = stack.pop_pmfs(wq)
                wx = self._likelihood_weights(z)
                flat = x.reshape(-1)
                stack.push_pmfs(flat, wx)
                stack.push_uniform(z, k)
                image_bits[i] = (
                    _ideal_bits(wx, flat) + prior_bits - _ideal_bits(wq, z)
                )  # net cost: likelihood + prior - bits back
                if progress is not None:
                    progress.update(1)
        return BitsBackResult(stack.words(), len(images), initial, stack.num_bits(), image_bits)

    def decode(self, words: np.ndarray, num_images: int, progress=None) -> np.ndarray:
        """Pop ``num_images`` images from ``words``; returns ``(N, *data_shape)`` uint8 in coding order.

        Raises :class:`~varinf.compression.coding.ans.CodingError` if the words do not decode back to the seed.
        """
        stack = AnsStack(words)
        k = self.bins.size
        d = self.prior_loc.size
        out = np.empty((num_images, self.num_dims), dtype=np.uint8)
        with num_threads(1):
            for i in range(num_images - 1, -1, -1):
                z = stack.pop_uniform(d, k)
                wx = self._likelihood_weights(z)
                x = stack.pop_pmfs(wx)
                out[i] = x
                stack.push_pmfs(z, self._posterior_weights(x))
                if progress is not None:
                    progress.update(1)
        seed = seed_words(self.initial_words)
        rest = stack.words()
        if rest.shape != seed.shape or np.any(rest != seed):
            raise CodingError("the compressed data does not decode back to the initial bits (corrupt or foreign)")
        return out.reshape(num_images, *self.data_shape)


def _ideal_bits(weights: np.ndarray, values: np.ndarray) -> float:
    return float(np.sum(PRECISION - np.log2(weights[np.arange(len(values)), values].astype(np.float64))))

