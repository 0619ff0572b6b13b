"""The VAE a lossless ``.vif`` file is coded with: float16 safetensors + ``model.json`` (never pickle).

A bits-back model folder holds ``model.safetensors`` (a :mod:`varinf.vae` model file, weights stored in
float16 to halve its size; loaded back into float32 by :func:`varinf.vae.load_vae`) and ``model.json``
(coding settings ``latent_bits``/``initial_words``/``batch_size``, the model's ``name``, the 8-byte id of the
*integer* model the weights quantize to (:class:`~varinf.compression.lossless.integer_vae.IntegerVAE`, checked on
load) and free-form ``info`` such as the model's -ELBO). The quantization is elementwise and exactly rounded, so the
same float16 weights give the same integer model on every machine. :func:`load_bitsback` with no argument returns the binarized-MNIST model shipped in
``varinf/assets/bitsback_mnist`` (the IWAE-paper MLP, 2x200 tanh, 50 latents, Bernoulli pixels).

Example::

    >>> import tempfile
    >>> from varinf.vae import VAE, VAEConfig
    >>> from varinf.compression.lossless.bitsback_model import load_bitsback, save_bitsback
    >>> vae = VAE.from_config(VAEConfig(data_shape=(1, 4, 4), latents=(3,), hidden=((8,),)))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     codec = save_bitsback(vae, d)
    ...     load_bitsback(d).model_id() == codec.model_id()
    True
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ...utils import atomic_write_text
from ...vae import load_vae
from ...vae.checkpoint import write_safetensors
from .bitsback import DEFAULT_BATCH, BitsBackCodec
from .integer_vae import INTEGER_NET_VERSION

__all__ = ["DEFAULT_BITSBACK_DIR", "load_bitsback", "save_bitsback"]

DEFAULT_BITSBACK_DIR = Path(__file__).resolve().parents[2] / "assets" / "bitsback_mnist"
WEIGHTS, CONFIG = "model.safetensors", "model.json"
DEFAULT_LATENT_BITS, DEFAULT_INITIAL_WORDS = 8, 64


def save_bitsback(
    vae,
    directory: str | os.PathLike,
    latent_bits: int = DEFAULT_LATENT_BITS,
    initial_words: int = DEFAULT_INITIAL_WORDS,
    info: dict | None = None,
    batch_size: int = DEFAULT_BATCH,
    name: str | None = None,
) -> BitsBackCodec:
    """Store ``vae`` (float16 weights) with its coding settings; returns the codec of the *stored* weights."""
    if vae.config is None:
        raise ValueError("only VAEs built with VAE.from_config(config) can be saved")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = directory.name if name is None else name
    tensors = {f"model.{k}": v.detach().to(torch.float16) for k, v in vae.state_dict().items()}
    write_safetensors(directory / WEIGHTS, tensors, {"kind": "model", "config": vae.config.to_dict()})
    codec = BitsBackCodec(load_vae(directory / WEIGHTS), latent_bits, initial_words, batch_size, name)
    meta = {"latent_bits": latent_bits, "initial_words": initial_words, "batch_size": batch_size, "name": name,
            "model_id": codec.model_id().hex(), "integer_net_version": INTEGER_NET_VERSION, "info": info or {}}  # fmt: skip
    atomic_write_text(directory / CONFIG, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return codec


def load_bitsback(directory: str | os.PathLike | None = None) -> BitsBackCodec:
    """The bits-back codec stored in ``directory`` (default: the shipped binarized-MNIST model).

    A :mod:`varinf.vae` run folder (``model.safetensors`` without ``model.json``) works too, with the default
    coding settings (8 latent bits, 64 seed words, batches of 256).
    """
    directory = DEFAULT_BITSBACK_DIR if directory is None else Path(directory)
    wpath, cpath = directory / WEIGHTS, directory / CONFIG
    if not wpath.is_file():
        raise FileNotFoundError(f"no bits-back model in {directory} (expected {WEIGHTS} and {CONFIG})")
    if not cpath.is_file():  # a varinf VAE run folder: default coding settings
        return BitsBackCodec(load_vae(wpath), DEFAULT_LATENT_BITS, DEFAULT_INITIAL_WORDS, name=directory.name)
    try:
        meta = json.loads(cpath.read_text())
        bits, words = int(meta["latent_bits"]), int(meta["initial_words"])
        batch, name = int(meta.get("batch_size", DEFAULT_BATCH)), str(meta.get("name", directory.name))
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{cpath}: not a valid bits-back model description ({e})") from None
    codec = BitsBackCodec(load_vae(wpath), bits, words, batch, name)
    if "model_id" in meta and codec.model_id().hex() != meta["model_id"]:
        raise ValueError(
            f"{wpath}: the weights quantize to integer model {codec.model_id().hex()}, not {meta['model_id']} as "
            f"recorded in {CONFIG} (weights altered, or written for another integer-network version)"
        )
    return codec
