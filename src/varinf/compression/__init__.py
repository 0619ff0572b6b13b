"""Compression: real bitstreams from probabilistic models (see README.md here). Units: bits.

Layers, bottom up:

- entropy coding: :class:`DiscreteTable` (deterministic 24-bit integer pmfs), :class:`AnsStack`
  (constriction's ANS stack coder; the only module importing constriction), :class:`Container` (``.vif``);
- learned lossy image codec (Ballé et al. 2017/2018): :class:`ImageCodec`, :class:`CodecConfig`,
  :func:`compress_image` / :func:`decompress_image`, :func:`train_codec`, :func:`load_codec`;
- evaluation: :func:`psnr`, :func:`ms_ssim`, :func:`bd_rate`, :func:`rd_report`.
"""

from .ans import AnsStack, CodingError
from .bdrate import bd_psnr, bd_rate
from .container import Container, FormatError, read_container
from .evaluate import RDPoint, RDReport, evaluate_learned, evaluate_pillow, rd_report
from .image_file import CompressedImage, compress_file, compress_image, decompress_file, decompress_image
from .metrics import ms_ssim, psnr, ssim
from .model import CodecConfig, ImageCodec, RDOutput, rd_loss
from .patches import PatchSampler, builtin_images, folder_images
from .pretrained import load_codec, save_codec
from .tables import DiscreteTable, gaussian_table, quantize_pmf
from .train import TrainConfig, TrainResult, train_codec

__all__ = [
    "AnsStack",
    "CodecConfig",
    "CodingError",
    "CompressedImage",
    "Container",
    "DiscreteTable",
    "FormatError",
    "ImageCodec",
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
    "decompress_file",
    "decompress_image",
    "evaluate_learned",
    "evaluate_pillow",
    "folder_images",
    "gaussian_table",
    "load_codec",
    "ms_ssim",
    "psnr",
    "quantize_pmf",
    "rd_loss",
    "rd_report",
    "read_container",
    "save_codec",
    "ssim",
    "train_codec",
]
