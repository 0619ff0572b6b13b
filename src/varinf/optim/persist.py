r"""Saving and loading a fit: ``result.save(path)``, ``varinf.load(path, model)``. Safetensors + JSON, no pickle.

One file (``.safetensors``; the suffix is added when missing), written atomically with a checksum
(:func:`varinf.utils.write_safetensors`)::

    tensors   family.<name>      the variational parameters (q's state_dict)
              elbo_trace         (num_steps,) float64
    metadata  format "varinf.fit/1"; meta = JSON: the model's fingerprint, the family (name, dimension,
              preconditioner, keyword arguments), the objective, every FitResult number, the
              diagnostics' headline numbers (k-hat, verdict, log evidence, ELBO), the varinf version

**The model is not in the file** (a model is code). Loading needs it back: ``varinf.load(path, model)``
checks that ``model`` is the one that was fitted by its *fingerprint* — the latents (names, shapes,
supports) and, for a model with data, the data's row count, names, row shapes and float64 sums
(:meth:`varinf.models.Plate.fingerprint`) — and raises a one-line error naming what differs. A built-in
example on its default data loads without the model: ``varinf.load(path)`` (the reading side:
:mod:`.restore`). A family given as a module of
another class than the built-in ones must be passed too (``family=``), freshly constructed.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

from ..families import DiagPlusLowRank, MixtureFamily, Preconditioned
from ..models import Model
from ..models.foreign import ForeignModel
from ..objectives import ELBO, IWAE, Renyi
from ..utils import write_safetensors

__all__ = ["ADVI_SCALARS", "FORMAT", "OBJECTIVES", "SCALARS", "fingerprint_differences", "model_fingerprint", "resolve_path",
           "save_result"]  # fmt: skip

FORMAT = "varinf.fit/1"
SCALARS = ("converged", "convergence_reason", "num_steps", "grad_evals", "wall_time", "method", "family_name",
           "batch_size", "route", "route_reason", "density_evals", "report")  # fmt: skip
ADVI_SCALARS = ("lr", "averaged_steps", "recoveries", "skipped_steps")
OBJECTIVES = {"ELBO": ELBO, "IWAE": IWAE, "Renyi": Renyi}


def resolve_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path if path.suffix == ".safetensors" else path.with_name(path.name + ".safetensors")


def model_fingerprint(model: Model) -> dict:
    """What identifies a fitted model without its code: name, latents, and the data's fingerprint."""
    latents = [[lat.name, list(lat.shape), repr(lat.support)] for lat in model.latents]
    plate = getattr(model, "plate", None)
    out = {"name": model.name, "latents": latents, "data": plate.fingerprint() if plate is not None else None}
    if isinstance(model, ForeignModel):  # the program and its data, as the engine identifies them
        out["engine"] = model.engine.fingerprint
    return out


def fingerprint_differences(saved: dict, now: dict) -> list[str]:
    out = []
    if saved["latents"] != now["latents"]:
        out.append(f"latents {saved['latents']} != {now['latents']}")
    a, b = saved.get("engine"), now.get("engine")
    if a != b:
        keys = sorted(k for k in set(a or {}) | set(b or {}) if (a or {}).get(k) != (b or {}).get(k))
        out.append(f"the foreign model differs ({', '.join(keys) or 'engine'})")
    a, b = saved.get("data"), now.get("data")
    if (a is None) != (b is None):
        out.append("one model has data, the other not")
    elif a is not None:
        if a["rows"] != b["rows"]:
            out.append(f"{a['rows']} data rows were fitted, the model has {b['rows']}")
        for name in sorted(set(a["tensors"]) | set(b["tensors"])):
            x, y = a["tensors"].get(name), b["tensors"].get(name)
            if x is None or y is None:
                out.append(f"data[{name!r}] is only in the {'model' if x is None else 'saved fit'}")
            elif x["row_shape"] != y["row_shape"]:  # dtype may differ: fits may run in another precision
                out.append(f"data[{name!r}] had rows of shape {x['row_shape']}, has {y['row_shape']}")
            elif any(not math.isclose(x[k], y[k], rel_tol=1e-6, abs_tol=1e-6 * math.sqrt(x["sum_sq"]) + 1e-12)
                     for k in ("sum", "sum_sq")):  # fmt: skip
                out.append(f"data[{name!r}] has other values")
    return out


def save_result(result, path: str | os.PathLike, *, add_suffix: bool = True) -> Path:
    """Write ``result`` (a :class:`~varinf.optim.FitResult`) to ``path`` (see the module docstring);
    ``add_suffix=False`` writes to ``path`` exactly, whatever its suffix."""
    family = result.family
    state = {f"family.{k}": v for k, v in family.state_dict().items()}
    state["elbo_trace"] = result.elbo_trace.double()
    base = family.base if isinstance(family, Preconditioned) else family
    objective = result.objective
    obj = None
    if dataclasses.is_dataclass(objective) and type(objective).__name__ in OBJECTIVES:
        obj = {"class": type(objective).__name__,
               "fields": {f.name: getattr(objective, f.name) for f in dataclasses.fields(objective) if f.name != "baseline"}}  # fmt: skip
    d = result.diagnostics
    meta = {
        "model": model_fingerprint(result.model),
        "family": {
            "name": result.family_name,
            "class": type(base).__name__,
            "dim": int(result.model.dim),
            "preconditioner": None if not isinstance(family, Preconditioned) else list(family.scale.shape),
            "kwargs": {
                k: v for k, v in (result.family_options or {}).items() if isinstance(v, int | float | str | bool)
            },
            "dtype": str(next(iter(family.state_dict().values())).dtype).replace("torch.", ""),
            "parts": _mixture_parts(family),
        },
        "objective": obj,
        "fit": {k: getattr(result, k) for k in (*SCALARS, *ADVI_SCALARS)},
        "window_means": list(result.window_means),
        "diagnostics": None
        if d is None
        else {
            "khat": d.khat,
            "verdict": d.verdict,
            "num_draws": d.num_draws,
            "elbo": d.elbo,
            "log_evidence": d.evidence.estimate,
            "log_evidence_se": d.evidence.se,
        },
        "varinf": _version(),
    }
    path = resolve_path(path) if add_suffix else Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot save to {path}: no folder {path.parent}")
    return write_safetensors(path, state, meta, format=FORMAT)


def _version() -> str:
    from .. import __version__

    return __version__


def _mixture_parts(family) -> list | None:
    """Pathfinder's q (a mixture of fixed diagonal-plus-low-rank Gaussians): each part's ``Q`` shape ``[D, k]``."""
    if isinstance(family, MixtureFamily) and all(isinstance(p, DiagPlusLowRank) for p in family.parts):
        return [list(p.Q.shape) for p in family.parts]
    return None
