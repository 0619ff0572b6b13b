r"""Lossless bits-back coding with a VAE (BB-ANS; Townsend, Bird & Barber 2019, arXiv:1901.04866).

Images are coded onto *one* ANS stack in batches; a batch :math:`x_{1..B}` is one datapoint with a factorized
posterior, so each network runs once per batch and each move is one constriction call::

    encode batch:  z   <- pop   Q(z | x_b)   for all b at once   (takes bits off the stack: the "bits back")
                   x   -> push  P(x_b | ẑ_b)                      (pixel likelihood at the bin centres ẑ)
                   z   -> push  P(z) = 1/K                        (max-entropy bins: every bin has prior mass 1/K)
    decode batch:  the three moves reversed (pop z with the prior, pop x, push z with Q(z | x)), last batch first

Latents are discretized per dimension into :math:`K = 2^{b}` bins of equal *prior* mass (edges
:math:`\Phi^{-1}(k/K)` in the prior's standard coordinates, centres at the quantiles :math:`(k + 1/2)/K`), so the
prior code is uniform, and the posterior of a diagonal Gaussian :math:`q(z\mid x)` is its mass on each bin. The net
cost of an image, in bits, is

.. math::

    \ell(x_i) = -\log_2 P(x_i\mid\hat z) - \log_2 P(\hat z) + \log_2 Q(\hat z\mid x_i),
    \qquad E_Q[\ell] \approx -\mathrm{ELBO}(x_i)/\ln 2.

The first pop needs bits to take: the stack is seeded with ``initial_words`` pseudo-random words (fixed seed). Batch
sizes grow from 1 to a quarter of the images coded so far (:func:`batch_sizes`), so each batch's pop is paid for by
the bits the earlier batches pushed, and only the first images' bits back come from the seed (the "initial bits"
overhead).

Determinism: every pmf comes from the integer model :class:`~varinf.compression.lossless.integer_vae.IntegerVAE`
(fixed-point networks, exactly rounded tables), so encoder and decoder build the same integers on any CPU, thread
count or build; :meth:`BitsBackCodec.model_id` hashes that integer model.

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

from dataclasses import dataclass

import numpy as np

from ..coding.ans import AnsStack, CodingError
from ..coding.tables import PRECISION
from .integer_vae import IntegerVAE, LatentBins

__all__ = ["BitsBackCodec", "BitsBackResult", "LatentBins", "batch_sizes"]

DEFAULT_BATCH = 256


def batch_sizes(num_images: int, max_batch: int) -> list[int]:
    r"""Sizes of the batches images are coded in: a quarter of the images coded so far (at least 1, at most
    ``max_batch``): 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 3, 4, 5, 6, ... Part of the file format (the decoder repeats it).

    Why a quarter: a batch pops its bits back (about :math:`D \cdot b - \mathrm{KL}` bits an image) before it
    pushes anything, and they must come from what the earlier batches pushed (about :math:`-\mathrm{ELBO}` bits
    an image), not from the seed: otherwise the seed overhead would grow with the batch size."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    sizes, done, n = [], 0, int(num_images)
    while done < n:
        sizes.append(min(n - done, max_batch, max(1, done // 4)))
        done += sizes[-1]
    return sizes


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
        untouched_words: seed words at the bottom of the stack that no pop ever reached (a decoder may regenerate
            them, and its stack never gets lower than ``untouched_words + 2`` words).
    """

    words: np.ndarray
    num_images: int
    initial_bits: int
    total_bits: int
    image_bits: np.ndarray
    untouched_words: int = 0

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
        vae: the model (one stochastic layer, MLP networks; Bernoulli or discretized-logistic likelihood).
        latent_bits: :math:`\\log_2` of the number of prior bins per latent dimension.
        initial_words: 32-bit words of seed on the stack before the first image.
        batch_size: the largest batch (images per network evaluation and per constriction call).
        name: a label for messages (e.g. the model folder's name).
    """

    def __init__(self, vae, latent_bits: int = 12, initial_words: int = 32, batch_size: int = DEFAULT_BATCH,
                 name: str = "") -> None:  # fmt: skip
        self.vae = vae.eval()
        self.net = IntegerVAE(self.vae, latent_bits)
        self.bins = self.net.bins
        self.initial_words = int(initial_words)
        self.batch_size = int(batch_size)
        if not 1 <= self.batch_size <= 65535:
            raise ValueError(f"batch_size must lie in [1, 65535], got {batch_size}")
        self.name = str(name)
        self.data_shape = self.net.data_shape
        self.num_dims = self.net.num_dims
        self.likelihood = self.net.likelihood
        self.symbols = self.net.symbols

    # ------------------------------------------------------------------ identity
    def model_id(self) -> bytes:
        """8 bytes: SHA-256 of the integer model (version, fixed-point rules, integer weights, latent bits)."""
        return self.net.model_id()

    def table_digest(self) -> int:
        """CRC32 of the integer lookup tables and latent bins (exactly rounded, so the same on every machine)."""
        return self.net.table_digest()

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
        flat = self.check_images(images).reshape(-1, self.num_dims)
        stack = AnsStack(seed_words(self.initial_words))
        initial = lowest = stack.num_bits()
        k, d = self.bins.size, self.net.latent_dim
        image_bits = np.empty(len(flat))
        start = 0
        for size in batch_sizes(len(flat), self.batch_size):
            x = flat[start : start + size]
            q = self.net.posterior_excess(x)
            z = stack.pop_excess(q)
            lowest = min(lowest, stack.num_bits())
            lik = self.net.likelihood_excess(z.reshape(size, d))
            stack.push_excess(x.reshape(-1), lik)
            stack.push_uniform(z, k)
            # net cost per image: likelihood + prior - bits back
            image_bits[start : start + size] = (
                _ideal_bits(lik, x.reshape(-1)).reshape(size, -1).sum(axis=1)
                + d * self.bins.bits
                - _ideal_bits(q, z).reshape(size, -1).sum(axis=1)
            )
            start += size
            if progress is not None:
                progress.update(size)
        untouched = max(0, min(self.initial_words, lowest // 32 - 2))
        return BitsBackResult(stack.words(), len(flat), initial, stack.num_bits(), image_bits, untouched)

    def decode(
        self, words: np.ndarray, num_images: int, floor_words: int = 0, batch_size: int | None = None, progress=None
    ) -> np.ndarray:
        """Pop ``num_images`` images from ``words``; returns ``(N, *data_shape)`` uint8 in coding order.

        ``floor_words``: the stack of a valid file never gets lower than ``floor_words + 2`` words (see
        :attr:`BitsBackResult.untouched_words`); lower means the data ran out, and decoding stops at once.
        ``batch_size``: the encoder's (default: this codec's). Raises
        :class:`~varinf.compression.coding.ans.CodingError` if the words do not decode back to the seed exactly.
        """
        stack = AnsStack(words)
        k, d = self.bins.size, self.net.latent_dim
        floor_bits = 32 * (floor_words + 2) if floor_words else 0
        parts = []
        for size in reversed(batch_sizes(num_images, batch_size or self.batch_size)):
            z = stack.pop_uniform(size * d, k)
            x = stack.pop_excess(self.net.likelihood_excess(z.reshape(size, d)))
            if stack.num_bits() < floor_bits:
                raise CodingError(f"the compressed data ran out with {num_images - sum(map(len, parts))} images to go")
            x = x.reshape(size, -1)
            stack.push_excess(z, self.net.posterior_excess(x))
            parts.append(x.astype(np.uint8))
            if progress is not None:
                progress.update(size)
        seed = seed_words(self.initial_words)
        rest = stack.words()
        if rest.shape != seed.shape or np.any(rest != seed):
            raise CodingError("the compressed data does not decode back to the initial bits (corrupt or foreign)")
        out = np.concatenate(parts[::-1]) if parts else np.empty((0, self.num_dims), np.uint8)
        return out.reshape(num_images, *self.data_shape)


def _ideal_bits(excess: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``-log2`` of the coded probability of each value, ``(n,)`` bits."""
    return PRECISION - np.log2(excess[np.arange(len(values)), values] + 1.0)
