"""Compression: real bitstreams from probabilistic models (see README.md here). Units: bits.

Subpackages, bottom up (every public name is re-exported here):

- ``coding``: :class:`DiscreteTable` (deterministic 24-bit integer pmfs), exactly rounded lookup tables and integer
  networks, :class:`AnsStack` (constriction's ANS stack coder; the only module importing constriction),
  :class:`Container` (``.vif``);
- ``lossy``, the learned image codec (Ballé et al. 2017/2018): :class:`ImageCodec`, :class:`CodecConfig`,
  :func:`compress_image` / :func:`decompress_image`, :func:`train_codec`, :func:`load_codec`;
- ``lossless``, bits-back coding with a VAE (BB-ANS, Townsend et al. 2019) over its integer model
  (:class:`IntegerVAE`, portable files): :class:`BitsBackCodec`,
  :func:`compress_lossless` / :func:`decompress_lossless`, :func:`load_bitsback` (shipped binarized-MNIST VAE);
- ``evaluation``: :func:`psnr`, :func:`ms_ssim`, :func:`bd_rate`, :func:`rd_report`.
"""

from .coding.ans import AnsStack, CodingError
from .coding.container import KIND_LOSSLESS, KIND_LOSSY_IMAGE, Container, FormatError, file_kind, read_container
from .coding.tables import DiscreteTable, gaussian_table, quantize_pmf
from .evaluation.bdrate import bd_psnr, bd_rate
from .evaluation.evaluate import RDPoint, RDReport, evaluate_learned, evaluate_pillow, rd_report
from .evaluation.metrics import ms_ssim, psnr, ssim
from .lossless.bitsback import BitsBackCodec, BitsBackResult, LatentBins
from .lossless.bitsback_model import load_bitsback, save_bitsback
from .lossless.integer_vae import IntegerVAE
from .lossless.lossless_file import (
    CompressedLossless,
    compress_lossless,
    compress_lossless_file,
    decompress_lossless,
    decompress_lossless_file,
    read_array,
)
from .lossy.image_file import CompressedImage, compress_file, compress_image, decompress_file, decompress_image
from .lossy.model import CodecConfig, ImageCodec, RDOutput, rd_loss
from .lossy.patches import PatchSampler, builtin_images, folder_images
from .lossy.pretrained import load_codec, save_codec
from .lossy.train import TrainConfig, TrainResult, train_codec

__all__ = [
    "KIND_LOSSLESS",
    "KIND_LOSSY_IMAGE",
    "AnsStack",
    "BitsBackCodec",
    "BitsBackResult",
    "CodecConfig",
    "CodingError",
    "CompressedImage",
    "CompressedLossless",
    "Container",
    "DiscreteTable",
    "FormatError",
    "ImageCodec",
    "IntegerVAE",
    "LatentBins",
    "PatchSampler",
    "RDOutput",
    "RDPoint",
    "RDReport",
    "TrainConfig",
    "TrainResult",
    "bd_psnr",
    "bd_rate",
    "builtin_images",
    "compress_file",
    "compress_image",
    "compress_lossless",
    "compress_lossless_file",
    "decompress_file",
    "decompress_image",
    "decompress_lossless",
    "decompress_lossless_file",
    "evaluate_learned",
    "evaluate_pillow",
    "file_kind",
    "folder_images",
    "gaussian_table",
    "load_bitsback",
    "load_codec",
    "ms_ssim",
    "psnr",
    "quantize_pmf",
    "rd_loss",
    "rd_report",
    "read_array",
    "read_container",
    "save_bitsback",
    "save_codec",
    "ssim",
    "train_codec",
]
