r"""Reading a fit written by :func:`~.persist.save_result`: ``varinf.load(path, model)`` (the format: :mod:`.persist`).

The model is checked against the saved fingerprint (a one-line error names what differs), the family rebuilt
(built-in families by name, Pathfinder's mixture from the saved part shapes, any other class from a fresh module
passed as ``family=``) and loaded with the saved parameters; the result comes back as the fit's
:class:`~.result.MethodRun` (options are not saved: they may hold callables).
"""

from __future__ import annotations

import math
import os

import torch

from ..families import FAMILIES, DiagPlusLowRank, MixtureFamily, Preconditioned, make_family
from ..models import EXAMPLES, Model, load_example
from ..utils import SafetensorsError as CheckpointError
from ..utils import read_safetensors
from .persist import ADVI_SCALARS, FORMAT, OBJECTIVES, fingerprint_differences, model_fingerprint, resolve_path
from .result import ADVIStats, MethodRun

__all__ = ["load_result"]


def _family(meta: dict, given):
    spec = meta["family"]
    if given is not None:
        return given
    if spec["class"] == "MixtureFamily" and spec.get("parts"):  # Pathfinder: shapes here, values in the state
        return MixtureFamily([DiagPlusLowRank(torch.zeros(D), torch.ones(D), torch.zeros(D, k), torch.eye(k))
                              for D, k in spec["parts"]])  # fmt: skip
    name = spec["name"]
    if name not in FAMILIES or spec["class"] != FAMILIES[name].__name__:
        raise CheckpointError(
            f"the fit used a family of class {spec['class']!r}; pass a fresh one: varinf.load(path, model, family=...)"
        )
    base = make_family(name, spec["dim"], **spec["kwargs"])
    pre = spec["preconditioner"]
    if pre is None:
        return base
    scale = torch.ones(pre) if len(pre) == 1 else torch.eye(pre[0])  # placeholders: the state holds A
    return Preconditioned(base, torch.zeros(spec["dim"]), scale)


def load_result(path: str | os.PathLike, model: Model | None = None, family=None):
    """Read a fit written by :func:`save_result`. ``model``: the fitted model (checked by fingerprint); may
    be omitted for a built-in example on its default data. Returns a :class:`~varinf.optim.FitResult`
    without diagnostics (``varinf.load(..., diagnose=True)`` recomputes them)."""
    path = resolve_path(path)
    tensors, meta = read_safetensors(path, format=FORMAT, what="fit")
    saved = meta["model"]
    if model is None:
        name = saved["name"]
        if name not in EXAMPLES:
            raise CheckpointError(f"{path}: a fit of model {name!r}; pass the model: varinf.load(path, model)")
        model = load_example(name)
    diff = fingerprint_differences(saved, model_fingerprint(model))
    if diff:
        raise CheckpointError(f"{path}: fitted to another model than {model.name!r}: " + "; ".join(diff))
    q = _family(meta, family)
    state = {k[len("family.") :]: v for k, v in tensors.items() if k.startswith("family.")}
    try:
        q.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(
            f"{path}: the saved family does not fit {type(q).__name__}: {str(e).splitlines()[0]}"
        ) from None
    ref = next((b for b in model.buffers() if b.is_floating_point()), None)
    q = q.to(dtype=getattr(torch, meta["family"]["dtype"]), device=ref.device if ref is not None else "cpu")
    obj = meta.get("objective")
    objective = OBJECTIVES[obj["class"]](**obj["fields"]) if obj else None
    return _run(meta, model, q, objective, tensors["elbo_trace"])


def _run(meta: dict, model, q, objective, trace) -> MethodRun:
    fit = dict(meta["fit"])
    fit["route"] = tuple(fit.get("route", ()))
    stats = {k: fit.pop(k) for k in ADVI_SCALARS if k in fit}
    advi = None
    if "lr" in stats and stats["lr"] is not None and math.isfinite(stats["lr"]):
        advi = ADVIStats(window_means=tuple(meta.get("window_means", ())), **stats)
    return MethodRun(model=model, family=q, objective=objective, elbo_trace=trace, options=None,
                     family_options=dict(meta["family"]["kwargs"]), advi=advi, **fit)  # fmt: skip
