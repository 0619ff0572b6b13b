"""Saving and loading codec weights: ``model.safetensors`` + ``model.json`` (never pickle).

The JSON records the :class:`~varinf.compression.lossy.model.CodecConfig`, the 8-byte model id (SHA-256 of config
and weights) and the digest of the integer coding tables derived from the weights on the machine that saved
them. Loading recomputes both: a different id means the weights file was altered (error); a different table
digest means this platform's float64 maths derives other tables from the same weights, so files written
elsewhere would not decode here (warning).

:func:`load_codec` with no argument returns the small pretrained codec shipped in ``varinf/assets/codec``.

Example::

    >>> import tempfile
    >>> from varinf.compression.lossy.model import CodecConfig, ImageCodec
    >>> from varinf.compression.lossy.pretrained import load_codec, save_codec
    >>> codec = ImageCodec(CodecConfig(channels=8, latent_channels=8, hyper_channels=8))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = save_codec(codec, d)
    ...     load_codec(d).model_id() == codec.model_id()
    True
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from ...utils import atomic_write_bytes, atomic_write_text
from .model import CodecConfig, ImageCodec

__all__ = ["DEFAULT_MODEL_DIR", "load_codec", "save_codec"]

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "assets" / "codec"
WEIGHTS, CONFIG = "model.safetensors", "model.json"


def save_codec(codec: ImageCodec, directory: str | os.PathLike, info: dict | None = None, half: bool = False) -> Path:
    """Write ``model.safetensors`` and ``model.json`` into ``directory`` (created; files replaced atomically).

    ``half=True`` stores float16 weights (half the size). The codec's own weights are first rounded to
    float16 precision in place, so the saved model id and tables are exactly those of the loaded model.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if half:
        with torch.no_grad():
            for p in codec.parameters():
                p.copy_(p.half().float())
    dtype = torch.float16 if half else torch.float32
    state = {k: v.detach().cpu().to(dtype).contiguous() for k, v in codec.state_dict().items()}
    meta = {
        "config": json.loads(codec.config.to_json()),
        "model_id": codec.model_id().hex(),
        "table_digest": f"{codec.tables().digest():08x}",
        "info": info or {},
    }
    # plain safetensors (no varinf checksum: the model id recorded in model.json checks the weights)
    atomic_write_bytes(directory / WEIGHTS, save(state, metadata={"model_id": meta["model_id"]}))
    atomic_write_text(directory / CONFIG, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return directory


def load_codec(directory: str | os.PathLike | None = None) -> ImageCodec:
    """The codec saved in ``directory`` (default: the shipped pretrained model), in eval mode."""
    directory = DEFAULT_MODEL_DIR if directory is None else Path(directory)
    wpath, cpath = directory / WEIGHTS, directory / CONFIG
    if not wpath.is_file() or not cpath.is_file():
        raise FileNotFoundError(f"no codec in {directory} (expected {WEIGHTS} and {CONFIG})")
    try:
        meta = json.loads(cpath.read_text())
        config = CodecConfig(**{k: v for k, v in meta["config"].items() if k in CodecConfig.__dataclass_fields__})
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{cpath}: not a valid codec description ({e})") from None
    codec = ImageCodec(config)
    try:
        state = {k: v.float() for k, v in load_file(str(wpath)).items()}
        codec.load_state_dict(state)
    except Exception as e:  # safetensors/torch raise several types for a corrupt or mismatched file
        raise ValueError(f"{wpath}: cannot load weights for this configuration ({e})") from None
    codec.eval()
    if "model_id" in meta and codec.model_id().hex() != meta["model_id"]:
        raise ValueError(f"{wpath}: weights do not match the model id recorded in {CONFIG} (file altered?)")
    if "table_digest" in meta and f"{codec.tables().digest():08x}" != meta["table_digest"]:
        warnings.warn(
            f"this platform derives different coding tables from {wpath} than the machine that saved it; "
            "files compressed elsewhere will be refused here",
            RuntimeWarning,
            stacklevel=2,
        )
    return codec
