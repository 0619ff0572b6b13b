r"""A VAE re-expressed as an integer network, so every pmf of bits-back coding is the same on every machine.

Bits-back coding builds three kinds of pmfs from a VAE: the posterior :math:`Q(z\mid x)` on latent bins, the pixel
likelihood :math:`P(x\mid\hat z)`, and the prior (uniform on its max-entropy bins). Each pmf is a pure function of
integers (Ballé, Johnston & Minnen 2019, arXiv:1810.01285):

* **Networks**: :func:`~varinf.compression.coding.integer_net.integer_mlp` (fixed-point weights ``2**-16``,
  activations ``2**-12``, exactly rounded tanh/ELU/SiLU tables, exact float64 BLAS products).
* **Posterior** (diagonal Gaussian, in the prior's standard coordinates): mean
  :math:`m = (\mu - \mu_p)/\sigma_p` with 16 fractional bits (folded into the last layer), inverse scale
  :math:`r = \sigma_p / (\mathrm{softplus}(\rho) + \sigma_{min})` from an exactly rounded table of :math:`\rho`
  (``2**-10`` steps, :math:`|\rho|\le 16`), then bin masses by
  :func:`~varinf.compression.coding.tables.interval_pmfs` with the exactly rounded table
  :math:`\lfloor(2^{24}-K)\,\Phi(i/2^{12})\rfloor`.
* **Bins** (:class:`LatentBins`): edges :math:`\mathrm{round}(2^{16}\Phi^{-1}(k/K))`, centres
  :math:`\mathrm{round}(2^{16}\Phi^{-1}((k+1/2)/K))`, exactly rounded.
* **Pixels**: Bernoulli, :math:`w_1 - 1 = \lfloor(2^{24}-2)\,\sigma(\ell)\rfloor` at the logit :math:`\ell` in
  ``2**-10`` steps (:math:`|\ell| \le 18`); discretized logistic (8 bits), the same interval rule as the posterior
  with :math:`\sigma` in place of :math:`\Phi` on the pixel edges :math:`(2j - 256)/255`.

:meth:`IntegerVAE.model_id` hashes the integer model (and :data:`INTEGER_NET_VERSION`); files record it, so a file
is decoded only by the very integers it was written with.

Shapes: ``posterior_excess(x)``: ``(n, P)`` symbols -> ``(n * D, K)``; ``likelihood_excess(z)``: ``(n, D)`` bin
indices -> ``(n * P, S)``; both float64 *excess* weights (weights - 1, rows summing to ``2**24 - K``).

Example::

    >>> import numpy as np
    >>> from varinf.vae import VAE, VAEConfig
    >>> from varinf.compression.lossless.integer_vae import IntegerVAE
    >>> net = IntegerVAE(VAE.from_config(VAEConfig(data_shape=(1, 2, 2), latents=(3,), hidden=((4,),))), 8)
    >>> net.posterior_excess(np.array([[0, 1, 1, 0]])).shape, net.likelihood_excess(np.zeros((1, 3), int)).shape
    ((3, 256), (4, 2))
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.distributions import Independent, Normal

from ...vae.networks import ConvDecoder, ConvEncoder
from ..coding.integer_net import (
    ACTIVATION_BITS,
    WEIGHT_BITS,
    IntegerActivation,
    IntegerConv,
    IntegerConvolution,
    IntegerDense,
    Reshape,
    integer_mlp,
    linear_arrays,
    round_shift,
)
from ..coding.lookup import exact_ndtri_table, lookup_table, table_digest
from ..coding.tables import PRECISION, interval_pmfs

__all__ = ["INTEGER_NET_VERSION", "IntegerVAE", "LatentBins"]

INTEGER_NET_VERSION = 1  # bump whenever any rule below changes: files record it and the model id hashes it
LATENT_BITS_FRAC = 16  # fractional bits of bin edges, centres and posterior means (prior standard units)
INV_SCALE_BITS = 16  # fractional bits of inverse scales
SCALE_INPUT_BITS, SCALE_INPUT_MAX = 10, 16  # pre-softplus scale rho: steps of 2**-10, |rho| <= 16
MEAN_MAX = 16  # |posterior mean| in prior standard deviations (beyond: clipped; no trained encoder goes there)
CDF_BITS, CDF_RANGE = 12, 6  # Phi / sigma tables: steps of 2**-12 over [-range, range] (exact beyond)
LOGIT_BITS, LOGIT_MAX = 10, 18  # Bernoulli logits: steps of 2**-10, |logit| <= 18 (2**-24 beyond)
PIXEL_CDF_RANGE = 18  # logistic CDF table range
LOG_SCALE_MAX = 7  # discretized logistic: log scale clipped to [-7, 7] (the float model clamps at -7)
PIXEL_MEAN_MAX = 4  # discretized logistic: |location| <= 4 (data span [-1, 1])
_TOTAL = 1 << PRECISION


@dataclass(frozen=True, eq=False)
class LatentBins:
    r"""``K = 2**bits`` max-entropy bins of the standard normal (the prior, in its standard coordinates).

    Attributes:
        bits: :math:`\log_2 K`.
        edges: ``(K - 1,)`` int64 interior edges :math:`\mathrm{round}(2^{16}\Phi^{-1}(k/K))`, exactly rounded.
        centres: ``(K,)`` int64 quantiles :math:`\mathrm{round}(2^{16}\Phi^{-1}((k + 1/2)/K))`.
    """

    bits: int
    edges: np.ndarray
    centres: np.ndarray

    @classmethod
    def standard(cls, bits: int) -> LatentBins:
        if not 1 <= bits <= 16:
            raise ValueError(f"latent_bits must lie in [1, 16], got {bits}")
        k = 1 << bits
        edges = exact_ndtri_table(tuple(range(1, k)), k, LATENT_BITS_FRAC)
        centres = exact_ndtri_table(tuple(range(1, 2 * k, 2)), 2 * k, LATENT_BITS_FRAC)
        return cls(int(bits), edges, centres)

    @property
    def size(self) -> int:
        return 1 << self.bits

    @property
    def std_edges(self) -> np.ndarray:
        """``(K + 1,)`` float64 edges in standard units, ``±inf`` at the ends."""
        return np.concatenate([[-np.inf], self.edges / 2.0**LATENT_BITS_FRAC, [np.inf]])

    @property
    def std_centres(self) -> np.ndarray:
        """``(K,)`` float64 centres in standard units."""
        return self.centres / 2.0**LATENT_BITS_FRAC

    def cdf_table(self) -> tuple[np.ndarray, int]:
        """:math:`\\lfloor (2^{24} - K)\\,\\Phi(i/2^{12})\\rfloor` for :math:`|i| \\le 6 \\cdot 2^{12}`, and its first index."""
        lo = -CDF_RANGE << CDF_BITS
        return lookup_table("ncdf", CDF_BITS, lo, -lo, float(_TOTAL - self.size), 0.0), lo

    def posterior_excess(self, loc: np.ndarray, inv_scale: np.ndarray) -> np.ndarray:
        """``(n, K)`` excess weights of :math:`N(m, 1/r^2)` on the bins from fixed-point ``loc`` = :math:`2^{16} m`
        and ``inv_scale`` = :math:`2^{16} r` (int64 ``(n,)``)."""
        cdf, lo = self.cdf_table()
        shift = LATENT_BITS_FRAC + INV_SCALE_BITS - CDF_BITS
        return interval_pmfs(self.edges, loc, inv_scale, shift, cdf, lo)

    def posterior_pmfs(self, loc, scale) -> np.ndarray:
        """``(n, K)`` int64 weights (rows sum to ``2**24``) of :math:`N(\\text{loc}, \\text{scale}^2)` in standard
        units (float arrays, converted to fixed point elementwise); for inspection and tests."""
        m = np.floor(np.asarray(loc, np.float64) * 2.0**LATENT_BITS_FRAC + 0.5).astype(np.int64)
        r = np.floor(2.0**INV_SCALE_BITS / np.asarray(scale, np.float64) + 0.5).astype(np.int64)
        return self.posterior_excess(m, r).astype(np.int64) + 1

    def digest(self) -> int:
        return table_digest(self.edges, self.centres, self.cdf_table()[0])


def _leaves(module: nn.Module) -> list[nn.Module]:
    """The modules of nested ``nn.Sequential`` containers (and varinf's conv encoder/decoder), in order."""
    if isinstance(module, ConvEncoder | ConvDecoder):
        return _leaves(module.net)
    if isinstance(module, nn.Sequential):
        return [leaf for m in module for leaf in _leaves(m)]
    return [module]


def _double_linear(weight: np.ndarray, bias: np.ndarray) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        layer.bias.copy_(torch.from_numpy(bias))
    return layer


class IntegerVAE:
    """The integer model of a one-layer :class:`varinf.vae.VAE` (MLP or conv, Gaussian posterior and prior,
    Bernoulli or discretized-logistic pixels) with ``2**latent_bits`` bins per latent; see the module docstring."""

    def __init__(self, vae, latent_bits: int):
        vae = vae.eval()
        self.bins = LatentBins.standard(latent_bits)
        self.data_shape = tuple(vae.data_shape)
        self.num_dims = math.prod(self.data_shape)
        self.likelihood = type(vae.likelihood).__name__
        if self.likelihood not in ("BernoulliLikelihood", "DiscretizedLogisticLikelihood"):
            raise ValueError(f"bits-back coding needs a discrete pixel model, got {self.likelihood}")
        self.binary = self.likelihood == "BernoulliLikelihood"
        self.symbols = 2 if self.binary else 256
        prior = vae.p_z()
        base = getattr(prior, "base_dist", None)
        if not isinstance(prior, Independent) or not isinstance(base, Normal):
            raise ValueError(f"bits-back coding needs a diagonal Gaussian prior, got {type(prior).__name__}")
        prior_loc = base.loc.detach().double().cpu().numpy().reshape(-1)
        prior_scale = base.scale.detach().double().cpu().numpy().reshape(-1)
        self.latent_dim = d = prior_loc.size
        if not hasattr(vae.encoder, "net") or not hasattr(vae.encoder, "min_scale"):
            raise ValueError("bits-back coding needs an amortized Gaussian encoder (one stochastic layer)")
        enc, dec = _leaves(vae.encoder.net), _leaves(vae.decoder)
        if not (enc and isinstance(enc[-1], nn.Linear) and dec and isinstance(dec[0], nn.Linear)):
            raise ValueError(
                "integer bits-back coding needs an encoder ending and a decoder starting with a Linear layer "
                "(varinf's MLP and conv VAEs)"
            )

        # encoder: x (0/1), or u = 2x - 255 with the first layer divided by 255 (the model sees x/127.5 - 1)
        w, b = linear_arrays(enc[-1])
        w[:d] /= prior_scale[:, None]  # posterior mean in the prior's standard units, m = (mu - mu_p) / sigma_p
        b[:d] = (b[:d] - prior_loc) / prior_scale
        enc = [*enc[:-1], _double_linear(w, b)]
        self.encoder, bits = integer_mlp(enc, 0, 1 if self.binary else 255, 1 if self.binary else 255, self.data_shape)
        self._enc_bits = bits
        self.min_scale = float(vae.encoder.min_scale)
        self._prior_scale = None
        if np.any(prior_scale != 1.0):
            self._prior_scale = np.floor(prior_scale * 2.0**INV_SCALE_BITS + 0.5).astype(np.int64)

        # decoder: input z_hat = mu_p + sigma_p * centre, centres in fixed point (LATENT_BITS_FRAC)
        w, b = linear_arrays(dec[0])
        b = np.array([math.fsum([bj, *(wj * prior_loc)]) for wj, bj in zip(w, b)])  # exactly rounded, any machine
        w = w * prior_scale[None, :]
        dec = [_double_linear(w, b), *dec[1:]]
        in_max = float(np.abs(self.bins.centres).max())
        self.decoder, self._dec_bits = integer_mlp(dec, LATENT_BITS_FRAC, in_max)
        if isinstance([layer for layer in self.decoder if not isinstance(layer, Reshape)][-1], IntegerActivation):
            raise ValueError("the decoder must end with a linear layer (logits / pixel parameters)")
        self._check_outputs()

    def _check_outputs(self) -> None:
        h = self._encode(np.zeros((1, self.num_dims)))
        if h.shape != (1, 2 * self.latent_dim):
            raise ValueError(f"encoder outputs {h.shape[1:]} features, expected 2 * {self.latent_dim}")
        per_pixel = 1 if self.binary else 2
        h = self._decode(np.zeros((1, self.latent_dim), np.int64))
        if h.shape != (1, per_pixel * self.num_dims):
            raise ValueError(f"decoder outputs {h.shape[1:]} features, expected {per_pixel} x {self.num_dims}")

    def _encode(self, x: np.ndarray) -> np.ndarray:
        """Symbols ``(n, P)`` -> encoder accumulators ``(n, 2D)``."""
        h = np.asarray(x, dtype=np.float64).reshape(len(x), *self.data_shape)
        if not self.binary:
            h = 2.0 * h - 255.0
        for layer in self.encoder:
            h = layer(h)
        return h.reshape(len(h), -1)

    def _decode(self, z: np.ndarray) -> np.ndarray:
        """Bin indices ``(n, D)`` -> decoder accumulators ``(n, P * params)``."""
        h = self.bins.centres.astype(np.float64)[z]
        for layer in self.decoder:
            h = layer(h)
        return h.reshape(len(h), -1)

    # ------------------------------------------------------------------ tables
    def _scale_table(self) -> tuple[np.ndarray, int]:
        lo = -SCALE_INPUT_MAX << SCALE_INPUT_BITS
        table = lookup_table("softplus", SCALE_INPUT_BITS, lo, -lo, float(2**INV_SCALE_BITS), 0.5, self.min_scale, True)
        return table, lo

    def _logit_table(self) -> tuple[np.ndarray, int]:
        lo = -LOGIT_MAX << LOGIT_BITS
        return lookup_table("sigmoid", LOGIT_BITS, lo, -lo, float(_TOTAL - 2), 0.0), lo

    def _pixel_tables(self) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
        """Logistic CDF table and first index, inverse-scale table (index: log scale), pixel edges."""
        lo = -PIXEL_CDF_RANGE << CDF_BITS
        cdf = lookup_table("sigmoid", CDF_BITS, lo, -lo, float(_TOTAL - 256), 0.0)
        s = LOG_SCALE_MAX << SCALE_INPUT_BITS
        inv_scale = lookup_table("exp", SCALE_INPUT_BITS, -s, s, float(2**INV_SCALE_BITS))[::-1]  # e^{-log s}
        j = np.arange(1, 256, dtype=np.int64)  # edge between values j - 1 and j: (2j - 256)/255, rounded exactly
        edges = ((2 * j - 256) * 2 ** (LATENT_BITS_FRAC + 1) + 255) // 510
        return cdf, lo, inv_scale, edges

    def _tables(self) -> list[np.ndarray]:
        acts = [layer.table for layer in (*self.encoder, *self.decoder) if isinstance(layer, IntegerActivation)]
        if self.binary:
            heads = [self._logit_table()[0]]
        else:
            cdf, _, inv_scale, edges = self._pixel_tables()
            heads = [cdf, inv_scale, edges]
        return [t for t in acts if t is not None] + [self._scale_table()[0], *heads]

    # ------------------------------------------------------------------ pmfs
    def posterior(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fixed-point posterior means and inverse scales (int64 ``(n, D)`` each) of symbols ``x`` ``(n, P)``."""
        h = self._encode(x)
        d = self.latent_dim
        loc = round_shift(h[:, :d], self._enc_bits - LATENT_BITS_FRAC)
        mean_max = MEAN_MAX << LATENT_BITS_FRAC
        loc = np.clip(loc, -mean_max, mean_max).astype(np.int64)
        table, lo = self._scale_table()
        rho = round_shift(h[:, d:], self._enc_bits - SCALE_INPUT_BITS)
        inv_scale = table.take((np.clip(rho, lo, -lo) - lo).astype(np.intp)).astype(np.int64)
        if self._prior_scale is not None:
            inv_scale = np.minimum(round_shift(inv_scale * self._prior_scale, INV_SCALE_BITS), 1 << 40)
        return loc, inv_scale

    def posterior_excess(self, x: np.ndarray) -> np.ndarray:
        """``(n * D, K)`` excess weights of :math:`Q(z\\mid x)` on the bins, latents of image 0 first."""
        loc, inv_scale = self.posterior(x)
        return self.bins.posterior_excess(loc.reshape(-1), inv_scale.reshape(-1))

    def likelihood_excess(self, z: np.ndarray) -> np.ndarray:
        """``(n * P, S)`` excess weights of :math:`P(x\\mid\\hat z)` for bin indices ``z`` ``(n, D)``."""
        h = self._decode(z)
        if self.binary:
            table, lo = self._logit_table()
            logit = np.clip(round_shift(h, self._dec_bits - LOGIT_BITS), lo, -lo) - lo
            e1 = table.take(logit.astype(np.intp).reshape(-1))
            return np.stack([(_TOTAL - 2) - e1, e1], axis=1)
        cdf, lo, inv_table, edges = self._pixel_tables()
        p = self.num_dims
        mean_max = PIXEL_MEAN_MAX << LATENT_BITS_FRAC
        loc = np.clip(round_shift(h[:, :p], self._dec_bits - LATENT_BITS_FRAC), -mean_max, mean_max)
        s = LOG_SCALE_MAX << SCALE_INPUT_BITS
        log_scale = np.clip(round_shift(h[:, p:], self._dec_bits - SCALE_INPUT_BITS), -s, s) + s
        inv_scale = inv_table.take(log_scale.astype(np.intp))
        shift = LATENT_BITS_FRAC + INV_SCALE_BITS - CDF_BITS
        return interval_pmfs(edges, loc.astype(np.int64).reshape(-1), inv_scale.astype(np.int64).reshape(-1),
                             shift, cdf, lo)  # fmt: skip

    # ------------------------------------------------------------------ identity
    def model_id(self) -> bytes:
        """8 bytes: SHA-256 of :data:`INTEGER_NET_VERSION`, the fixed-point rules, the shapes and every integer."""
        h = hashlib.sha256()
        spec = {
            "version": INTEGER_NET_VERSION, "likelihood": self.likelihood, "data_shape": self.data_shape,
            "latent_bits": self.bins.bits, "min_scale": self.min_scale, "weight_bits": WEIGHT_BITS,
            "activation_bits": ACTIVATION_BITS,
            "layers": [f"{type(layer).__name__}:{getattr(layer, 'name', getattr(layer, 'shape', ''))}"
                       for layer in (*self.encoder, *self.decoder)],
        }  # fmt: skip
        h.update(json.dumps(spec, sort_keys=True).encode())
        for layer in (*self.encoder, *self.decoder):
            if isinstance(layer, IntegerConvolution):
                c = layer.conv
                h.update(repr((c.upsample, c.pad, c.stride, c.weight.shape)).encode())
                layer = c
            if isinstance(layer, IntegerDense | IntegerConv):
                for a in (layer.weight, layer.bias):
                    h.update(a.astype("<i8").tobytes())
        if self._prior_scale is not None:
            h.update(self._prior_scale.astype("<i8").tobytes())
        return h.digest()[:8]

    def table_digest(self) -> int:
        """CRC32 of every lookup table, bin edge and centre (all exactly rounded, so equal on every machine)."""
        return table_digest(*self._tables(), crc=self.bins.digest())
