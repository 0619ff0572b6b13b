"""The lossy image codec as a model: transforms, gain units and a latent codec, trained on :math:`R + \\lambda D`.

::

    x ──g_a──► y ──×g_q──► latent codec (factorized | hyperprior) ──► ŷ ──×g'_q──g_s──► x̂
                              │
                              └── rate R = -log2 p(ŷ, ẑ)  [bits]

Training minimizes, per image, :math:`R/(HW) + \\lambda_q \\cdot 255^2 \\cdot \\mathrm{MSE}(x, \\hat x)` with
:math:`x \\in [0, 1]` (rate in bits per pixel, distortion on the 8-bit scale, as in CompressAI), where each
sample draws a quality level :math:`q` and its :math:`\\lambda_q` (Cui et al. 2021, arXiv:2003.02012).

Shapes: ``forward(x, quality)`` with ``x`` ``(B, 3, H, W)`` (H, W multiples of ``codec.multiple``) and
``quality`` ``(B,)`` in ``[0, levels - 1]``. :meth:`ImageCodec.compress` / :meth:`ImageCodec.decompress` turn
one such image into ANS words and back (see their dataflow); files around them live in
:mod:`varinf.compression.lossy.image_file`.

Example::

    >>> import torch
    >>> from varinf.compression.lossy.model import CodecConfig, ImageCodec
    >>> codec = ImageCodec(CodecConfig(channels=8, latent_channels=8, hyper_channels=8)).eval()
    >>> out = codec(torch.rand(1, 3, 64, 64), torch.tensor([0.0]))
    >>> tuple(out.x_hat.shape), out.bits.shape
    ((1, 3, 64, 64), torch.Size([1]))
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from ...utils import blas_threads, num_threads
from ...utils.torch_private import tensor_version
from ..coding.ans import AnsStack, CodingError
from .checkerboard import CheckerboardLatent
from .fast_synthesis import decoding_synthesis
from .gain import GainUnits
from .latents import FactorizedLatent, HyperpriorLatent, LatentTables
from .mean_scale import MeanScaleLatent
from .size_bound import check_declared_size, check_encoded, decoding_budget
from .transforms import FACTORIZED_MULTIPLE, analysis, synthesis

__all__ = ["DEFAULT_LAMBDAS", "CodecConfig", "ImageCodec", "LatentStreams", "RDOutput", "rd_loss"]

# CompressAI's lambdas for its qualities 1..6 (MSE on the 8-bit scale)
DEFAULT_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483)
DEFAULT_QUALITY_LAMBDA = 0.013
PRIORS = ("hyperprior", "mean-scale", "checkerboard", "factorized")


@dataclass(frozen=True)
class CodecConfig:
    """Architecture of an :class:`ImageCodec` (stored as JSON next to the weights).

    Attributes:
        prior: ``"hyperprior"`` (Ballé 2018), ``"mean-scale"`` (Minnen 2018, no context), ``"checkerboard"``
            (mean-scale plus a two-pass checkerboard context, He et al. 2021) or ``"factorized"``.
        channels: ``N``, hidden channels of the transforms.
        latent_channels: ``M``, channels of ``y``.
        hyper_channels: channels of ``z`` and of the hyper transforms.
        lambdas: one rate-distortion trade-off per quality level (increasing = higher quality).
        extra: further settings (``"context_channels"``, ``"context_hidden"``: sizes of the checkerboard context).
    """

    prior: str = "hyperprior"
    channels: int = 64
    latent_channels: int = 128
    hyper_channels: int = 64
    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS
    name: str = "varinf-codec"
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)} (got {self.prior!r})")
        if min(self.channels, self.latent_channels, self.hyper_channels) < 1:
            raise ValueError("channel counts must be positive")
        if len(self.lambdas) < 1 or any(not (lam > 0) for lam in self.lambdas):
            raise ValueError("lambdas must be a non-empty list of positive numbers")
        object.__setattr__(self, "lambdas", tuple(float(v) for v in self.lambdas))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CodecConfig:
        data = json.loads(text)
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass
class RDOutput:
    """Forward pass of an :class:`ImageCodec`.

    Attributes:
        x_hat: ``(B, 3, H, W)`` reconstruction (not clamped).
        y_bits, z_bits: ``(B,)`` estimated bits of the latent and hyper-latent.
        num_pixels: ``H * W``.
    """

    x_hat: torch.Tensor
    y_bits: torch.Tensor
    z_bits: torch.Tensor
    num_pixels: int

    @property
    def bits(self) -> torch.Tensor:
        return self.y_bits + self.z_bits

    @property
    def bpp(self) -> torch.Tensor:
        return self.bits / self.num_pixels


@dataclass(frozen=True)
class LatentStreams:
    """One image as :meth:`ImageCodec.compress` codes it.

    Attributes:
        words: ``uint32`` ANS stack words (ẑ on top of ŷ for the hyperprior).
        size: ``(H, W)`` of the coded (padded) image; :meth:`ImageCodec.decompress` needs it back.
        num_bits: bits of ``words`` as the coder counts them (the payload).
        estimated_bits: the model's rate :math:`-\\log_2 p(\\hat y, \\hat z)` of the same rounded latents.
    """

    words: np.ndarray
    size: tuple[int, int]
    num_bits: int
    estimated_bits: float


@dataclass
class RDLoss:
    """``loss`` (scalar, minimized), ``bpp`` and ``mse`` (``(B,)``, MSE of [0, 1] values)."""

    loss: torch.Tensor
    bpp: torch.Tensor
    mse: torch.Tensor


def rd_loss(out: RDOutput, x: torch.Tensor, lam: torch.Tensor) -> RDLoss:
    """:math:`\\text{mean}_b\\,[\\,\\text{bpp}_b + \\lambda_b\\, 255^2\\, \\text{MSE}_b\\,]`."""
    mse = ((out.x_hat - x) ** 2).flatten(1).mean(dim=1)
    return RDLoss((out.bpp + lam * 255.0**2 * mse).mean(), out.bpp, mse)


class ImageCodec(nn.Module):
    """Variable-rate learned image codec (see module docstring). Build with a :class:`CodecConfig`.

    ``forward`` (training: noisy latents, estimated bits), ``compress`` and ``decompress`` (real bitstreams)::

        compress     x ──g_a──► y ──×g_q──► [round] ──► latent.push ──► ANS words (+ size, quality)
                                                         │ hyperprior: ẑ = round(h_a(|y|)) pushed last,
                                                         │ σ rows from the integer h_s(ẑ); mean-scale:
                                                         │ μ and σ from it, symbols round(y − μ)
        decompress   ANS words ──latent.pop──► ŷ ──×g'_q──g_s──► x̂      (ẑ popped first; g_s on one thread,
                                                                        in its decode-only fast form)

    The symbols depend only on integers (integer tables, integer h_s), so they decode the same anywhere; the
    float synthesis runs on one thread so the pixels do not depend on the caller's thread setting.
    """

    def __init__(self, config: CodecConfig):
        super().__init__()
        self.config = config
        n, m = config.channels, config.latent_channels
        self.g_a = analysis(n, m)
        self.g_s = synthesis(n, m)
        lams = np.asarray(config.lambdas)
        # finer quantization for larger lambda: step^2 ~ 1/lambda, so log g ~ log(lambda)/2
        self.gains = GainUnits(len(lams), m, (0.5 * np.log(lams / math.exp(np.log(lams).mean()))).tolist())
        if config.prior == "hyperprior":
            self.latent: FactorizedLatent | HyperpriorLatent | MeanScaleLatent | CheckerboardLatent = HyperpriorLatent(
                m, config.hyper_channels
            )
        elif config.prior == "mean-scale":
            self.latent = MeanScaleLatent(m, config.hyper_channels)
        elif config.prior == "checkerboard":
            self.latent = CheckerboardLatent(m, config.hyper_channels, int(config.extra.get("context_channels", 128)),
                                             int(config.extra.get("context_hidden", 192)))  # fmt: skip
        else:
            self.latent = FactorizedLatent(m)
        self._tables_key: tuple | None = None
        self._tables: LatentTables | None = None
        self._decoder: tuple[tuple, nn.Module] | None = None
        self._id: bytes | None = None

    @property
    def multiple(self) -> int:
        """Image height and width must be multiples of this (16 or 64); files pad and crop."""
        return self.latent.multiple

    @property
    def max_quality(self) -> float:
        """Highest quality level (``len(lambdas) - 1``); qualities are continuous in ``[0, max_quality]``."""
        return float(len(self.config.lambdas) - 1)

    @property
    def default_quality(self) -> float:
        """Quality used when none is given: the level whose lambda is nearest 0.013 (level 3 of the default
        lambdas)."""
        return float(np.argmin(np.abs(np.log(np.asarray(self.config.lambdas)) - np.log(DEFAULT_QUALITY_LAMBDA))))

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] % self.multiple or x.shape[3] % self.multiple:
            raise ValueError(f"expected (B, 3, H, W) with H, W multiples of {self.multiple}, got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> RDOutput:
        self._check(x)
        gain, inverse_gain = self.gains(quality)
        latent = self.latent(self.g_a(x) * gain)
        x_hat = self.g_s(latent.y_hat * inverse_gain)
        return RDOutput(x_hat, latent.y_bits, latent.z_bits, x.shape[2] * x.shape[3])

    # ------------------------------------------------------------------ bitstreams
    def compress(self, x: torch.Tensor, quality: float) -> LatentStreams:
        """Entropy code one image ``x`` ``(1, 3, H, W)`` in [0, 1] (H, W multiples of :attr:`multiple`) at
        ``quality`` in ``[0, max_quality]``. Runs on one thread (the bytes do not depend on the caller's thread
        setting). Puts the model in eval mode."""
        self._check(x)
        if x.shape[0] != 1:
            raise ValueError(f"compress codes one image at a time, got a batch of {x.shape[0]}")
        self.eval()
        tables = self.tables()
        # one thread, as in decoding: the latents (and so the file's bytes) must not depend on the thread setting
        with torch.no_grad(), num_threads(1), blas_threads(1):
            gain, _ = self.gains(torch.tensor([quality]))
            y = self.g_a(x) * gain
            stack = AnsStack()
            self.latent.push(y, stack, tables)
            check_encoded(stack)  # never write a file the decoder's size checks would refuse
            latent = self.latent(y)  # the model's own estimate of the rate of the same rounded latents
        size = (x.shape[2], x.shape[3])
        return LatentStreams(stack.words(), size, stack.num_bits(), float(latent.bits.sum()))

    def decompress(self, words: np.ndarray, size: tuple[int, int], quality: float) -> torch.Tensor:
        """Decode the words of :meth:`compress` (same model, ``size`` and ``quality``) to ``x̂`` ``(1, 3, H, W)``
        (not clamped). Raises :class:`~varinf.compression.coding.ans.CodingError` for words that are not
        such a stream, before allocating anything if they are too few for ``size``
        (:mod:`~varinf.compression.lossy.size_bound`). Puts the model in eval mode."""
        h, w = size
        if h % self.multiple or w % self.multiple:
            raise ValueError(f"size must be multiples of {self.multiple}, got {tuple(size)}")
        shape = (1, self.config.latent_channels, h // FACTORIZED_MULTIPLE, w // FACTORIZED_MULTIPLE)
        self.eval()
        tables = self.tables()
        check_declared_size(tables, shape, len(words))  # work bounded by the payload's size
        stack = AnsStack(words, floor_budget=decoding_budget(len(words)))
        with blas_threads(1):  # the integer networks multiply small matrices: no thread wake-ups
            y_hat = self.latent.pop(stack, shape, tables)
        if not stack.is_empty():
            raise CodingError("data left over after decoding every latent")
        # one thread: oneDNN picks thread-count-dependent summation orders, and the decoded pixels must not
        # depend on the caller's thread setting (the symbols never do)
        with torch.no_grad(), num_threads(1):
            _, inverse_gain = self.gains(torch.tensor([quality]))
            return self.decoding_synthesis()(y_hat * inverse_gain)

    # ------------------------------------------------------------------ coding state derived from weights
    def _weights_key(self) -> tuple:
        # tensors count in-place updates (optimizer steps, load_state_dict) in their version counter
        return tuple((p.data_ptr(), tensor_version(p)) for p in self.parameters())

    def tables(self) -> LatentTables:
        """Integer tables derived from the current weights (recomputed only after the weights change)."""
        key = self._weights_key()
        if self._tables is None or key != self._tables_key:
            with torch.no_grad():
                self._tables = self.latent.tables()
            self._id = None
            self._tables_key = key
        return self._tables

    def decoding_synthesis(self) -> nn.Module:
        """Decode-only fast copy of ``g_s`` (:mod:`varinf.compression.lossy.fast_synthesis`), rebuilt after the
        weights change."""
        key = self._weights_key()
        if self._decoder is None or self._decoder[0] != key:
            self._decoder = (key, decoding_synthesis(self.g_s))
        return self._decoder[1]

    def model_id(self) -> bytes:
        """8-byte SHA-256 prefix of the configuration and every weight: files name the model they need."""
        self.tables()  # refreshes the cache key
        if self._id is None:
            h = hashlib.sha256(self.config.to_json().encode())
            for name, tensor in sorted(self.state_dict().items()):
                h.update(name.encode())
                h.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
            self._id = h.digest()[:8]
        return self._id
