"""Data for a Stan program: a dict (numbers, lists, NumPy arrays, torch tensors) or a JSON file, to the JSON
text Stan reads (CmdStan's format: matrices as lists of rows).

Checked here, naming the field: NaN or infinite values (Stan would accept them for an unconstrained ``real``
and the log density would be NaN), values that are not numbers, and non-integers given for an ``int``
declaration (``stanc --info`` gives the types). Integral floats for ``int`` fields are converted (3.0 -> 3).
Missing fields and wrong sizes are left to Stan, whose messages name the variable and the sizes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["data_fingerprint", "data_json", "read_data"]


def read_data(data: Mapping[str, Any] | str | os.PathLike | None) -> dict[str, Any]:
    """``data`` as a dict: given as one, read from a JSON file, or empty (``None``)."""
    if data is None:
        return {}
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        if not path.is_file():
            raise ValueError(f"Stan data file {path} does not exist" if not path.exists() else f"{path} is not a file")
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"Stan data file {path} is not valid JSON ({e})") from None
        if not isinstance(loaded, dict):
            raise ValueError(
                f"Stan data file {path} must hold a JSON object {{name: value}}, got {type(loaded).__name__}"
            )
        return loaded
    if not isinstance(data, Mapping):
        raise TypeError(f"Stan data must be a dict or a JSON file path, got {type(data).__name__}")
    return dict(data)


def _plain(value: Any, name: str) -> Any:
    """Numbers and nested lists from arrays, tensors and scalars (``tolist`` where there is one)."""
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu()
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        return [_plain(v, name) for v in value]
    if isinstance(value, dict):  # Stan tuples are JSON objects {"1": ..., "2": ...}
        return {k: _plain(v, name) for k, v in value.items()}
    if isinstance(value, bool):
        return int(value)
    if value is None or not isinstance(value, int | float):
        raise ValueError(f"Stan data field {name!r} holds {value!r}, not a number")
    return value


def _check(value: Any, name: str, integer: bool) -> Any:
    if isinstance(value, list):
        return [_check(v, name, integer) for v in value]
    if isinstance(value, dict):
        return {k: _check(v, name, integer) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"Stan data field {name!r} has a non-finite value ({value})")
    if integer and not isinstance(value, int):
        if not float(value).is_integer():
            raise ValueError(f"Stan data field {name!r} is declared int but holds {value!r}")
        return int(value)
    return value


def data_json(data: Mapping[str, Any], inputs: Mapping[str, Any] | None = None) -> str:
    """The JSON text of ``data`` for a program whose ``stanc --info`` ``inputs`` are given (types)."""
    inputs = inputs or {}
    out = {}
    for name, value in data.items():
        integer = (inputs.get(name) or {}).get("type") == "int"
        out[str(name)] = _check(_plain(value, name), name, integer)
    return json.dumps(out, separators=(",", ":"), sort_keys=True)


def data_fingerprint(text: str) -> str:
    """A short hash of :func:`data_json`'s text (keys sorted, so the order of a dict does not matter)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]
