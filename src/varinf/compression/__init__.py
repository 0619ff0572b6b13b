"""Compression: real bitstreams from probabilistic models (see README.md here). Units: bits.

Layers, bottom up:

- entropy coding: :class:`DiscreteTable` (deterministic 24-bit integer pmfs), :class:`AnsStack`
  (constriction's ANS stack coder; the only module importing constriction), :class:`Container` (``.vif``);
- learned lossy image codec (Ballé et al. 2017/2018): :class:`ImageCodec`, :class:`CodecConfig`,
  :func:`compress_image` / :func:`decompress_image`, :func:`train_codec`, :func:`load_codec`;
- lossless bits-back coding with a VAE (BB-ANS, Townsend et al. 2019): :class:`BitsBackCodec`,
  :func:`compress_lossless` / :func:`decompress_lossless`, :func:`load_bitsback` (shipped binarized-MNIST VAE);
- evaluation: :func:`psnr`, :func:`ms_ssim`, :func:`bd_rate`, :func:`rd_report`.
"""

from .ans import AnsStack, CodingError
from .bdrate import bd_psnr, bd_rate
from .bitsback import BitsBackCodec, BitsBackResult, LatentBins
from .bitsback_model import load_bitsback, save_bitsback
from .container import KIND_LOSSLESS, KIND_LOSSY_IMAGE, Container, FormatError, file_kind, read_container
from .evaluate import RDPoint, RDReport, evaluate_learned, evaluate_pillow, rd_report
from .image_file import CompressedImage, compress_file, compress_image, decompress_file, decompress_image
from .lossless_file import (
    CompressedLossless,
    compress_lossless,
    compress_lossless_file,
    decompress_lossless,
    decompress_lossless_file,
    read_array,
)
from .metrics import ms_ssim, psnr, ssim
from .model import CodecConfig, ImageCodec, RDOutput, rd_loss
from .patches import PatchSampler, builtin_images, folder_images
from .pretrained import load_codec, save_codec
from .tables import DiscreteTable, gaussian_table, quantize_pmf
from .train import TrainConfig, TrainResult, train_codec

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
