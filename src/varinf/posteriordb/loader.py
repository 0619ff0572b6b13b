r"""Read posteriordb posteriors: data (``data.json``), Stan code, and reference posterior draws.

Two layouts are understood (the root is found with :func:`default_root` or passed explicitly):

``staged`` — one folder per posterior, as in ``../shared/data/posteriordb``::

    <root>/<posterior>/posterior.json  data.json  model.stan  [reference_draws.npz]

``full`` — a checkout of github.com/stan-dev/posteriordb (``<root>`` is the repository or its
``posterior_database`` folder)::

    posteriors/<posterior>.json
    data/data/<data_name>.json[.zip]
    models/stan/<model_name>.stan
    reference_posteriors/draws/draws/<reference_posterior_name>.json[.zip]   (list of chains: {name: [draws]})

Reference draws are in the constrained space and include transformed parameters; their columns are
named as Stan writes them (``theta[1]``). Nothing is unpickled (``np.load(allow_pickle=False)``).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .registry import build_model

__all__ = ["Posterior", "ReferenceDraws", "default_root", "list_posteriors", "load_posterior"]


@dataclass(frozen=True)
class ReferenceDraws:
    """Reference posterior draws: ``draws`` ``(chains, draws, d)`` float64, columns named by ``names``."""

    names: tuple[str, ...]
    draws: np.ndarray

    @property
    def flat(self) -> np.ndarray:
        """``(chains * draws, d)``."""
        return self.draws.reshape(-1, self.draws.shape[-1])

    @property
    def mean(self) -> np.ndarray:
        return self.flat.mean(0)

    @property
    def sd(self) -> np.ndarray:
        return self.flat.std(0, ddof=1)


@dataclass(frozen=True)
class Posterior:
    """One posteriordb posterior (``<data_name>-<model_name>``).

    Attributes:
        name, model_name, data_name: posteriordb's identifiers.
        data: the parsed ``data.json``.
        stan_code: the Stan program (None if the file is missing).
        reference: reference draws, or None when posteriordb has none for this posterior.
        source: where it was read from.
    """

    name: str
    model_name: str
    data_name: str
    data: dict[str, Any]
    stan_code: str | None
    reference: ReferenceDraws | None
    source: Path

    def model(self):
        """The varinf model for this posterior (see :func:`varinf.posteriordb.build_model`)."""
        return build_model(self)


def default_root() -> Path:
    """``$VARINF_POSTERIORDB``, else ``$VARINF_SHARED_DATA/posteriordb``, else ``../shared/data/posteriordb``
    beside the varinf checkout. Raises ``FileNotFoundError`` naming what was tried."""
    tried = []
    env = os.environ.get("VARINF_POSTERIORDB")
    if env:
        tried.append(Path(env))
    shared = os.environ.get("VARINF_SHARED_DATA")
    if shared:
        tried.append(Path(shared) / "posteriordb")
    tried.append(Path(__file__).resolve().parents[3].parent / "shared" / "data" / "posteriordb")
    for p in tried:
        if p.is_dir():
            return p
    raise FileNotFoundError(
        "no posteriordb found (tried " + ", ".join(str(p) for p in tried) + "); set $VARINF_POSTERIORDB to a "
        "posteriordb checkout or pass root="
    )


def _full_root(root: Path) -> Path | None:
    for cand in (root / "posterior_database", root):
        if (cand / "posteriors").is_dir():
            return cand
    return None


def _read_json(path: Path) -> Any:
    """Read ``path`` or ``path.zip`` (posteriordb zips its data and draws)."""
    if path.is_file():
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    zpath = path.with_name(path.name + ".zip")
    if zpath.is_file():
        with zipfile.ZipFile(zpath) as zf:
            members = [m for m in zf.namelist() if m.endswith(".json")]
            if len(members) != 1:
                raise ValueError(f"{zpath}: expected one .json file inside, found {zf.namelist()}")
            return json.loads(zf.read(members[0]).decode("utf-8"))
    raise FileNotFoundError(f"missing file: {path} (or {zpath.name})")


def list_posteriors(root: str | os.PathLike | None = None, with_reference: bool | None = None) -> list[str]:
    """Names of the posteriors under ``root``; ``with_reference=True/False`` filters on reference draws."""
    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        raise FileNotFoundError(f"posteriordb root {root} is not a directory")
    full = _full_root(root)
    names = []
    if full is not None:
        for p in sorted((full / "posteriors").glob("*.json")):
            if with_reference is None:
                names.append(p.stem)
                continue
            ref = json.loads(p.read_text(encoding="utf-8")).get("reference_posterior_name")
            has = ref is not None and _draws_path(full, ref) is not None
            if has == with_reference:
                names.append(p.stem)
        return names
    for d in sorted(p for p in root.iterdir() if (p / "posterior.json").is_file()):
        if with_reference is None or (d / "reference_draws.npz").is_file() == with_reference:
            names.append(d.name)
    return names


def _draws_path(full: Path, ref: str) -> Path | None:
    base = full / "reference_posteriors" / "draws" / "draws" / f"{ref}.json"
    for p in (base, base.with_name(base.name + ".zip")):
        if p.is_file():
            return base
    return None


def _reference_from_chains(chains: list[dict[str, list[float]]], where: Path) -> ReferenceDraws:
    if not chains or not isinstance(chains, list) or not isinstance(chains[0], dict):
        raise ValueError(f"{where}: reference draws must be a list of chains, each {{name: [draws]}}")
    names = tuple(chains[0])
    try:
        arr = np.array([[chain[n] for n in names] for chain in chains], dtype=np.float64)  # (chains, d, draws)
    except (KeyError, ValueError) as e:
        raise ValueError(f"{where}: chains have different parameters or lengths ({e})") from None
    return ReferenceDraws(names, arr.transpose(0, 2, 1).copy())


def _load_staged(d: Path, name: str) -> Posterior:
    meta = _read_json(d / "posterior.json")
    stan = d / "model.stan"
    reference = None
    npz = d / "reference_draws.npz"
    if npz.is_file():
        with np.load(npz, allow_pickle=False) as z:
            draws = np.asarray(z["draws"], dtype=np.float64)
            names = tuple(str(s) for s in z["names"])
        if draws.ndim != 3 or draws.shape[-1] != len(names):
            raise ValueError(f"{npz}: draws must be (chains, draws, {len(names)}), got {draws.shape}")
        reference = ReferenceDraws(names, draws)
    return Posterior(
        name=meta.get("name", name),
        model_name=meta["model_name"],
        data_name=meta["data_name"],
        data=_read_json(d / "data.json"),
        stan_code=stan.read_text(encoding="utf-8") if stan.is_file() else None,
        reference=reference,
        source=d,
    )


def _load_full(full: Path, name: str) -> Posterior:
    meta = _read_json(full / "posteriors" / f"{name}.json")
    stan = full / "models" / "stan" / f"{meta['model_name']}.stan"
    ref_name = meta.get("reference_posterior_name")
    path = _draws_path(full, ref_name) if ref_name else None
    reference = _reference_from_chains(_read_json(path), path) if path is not None else None
    return Posterior(
        name=name,
        model_name=meta["model_name"],
        data_name=meta["data_name"],
        data=_read_json(full / "data" / "data" / f"{meta['data_name']}.json"),
        stan_code=stan.read_text(encoding="utf-8") if stan.is_file() else None,
        reference=reference,
        source=full,
    )


def load_posterior(name: str, root: str | os.PathLike | None = None) -> Posterior:
    """Load posterior ``name`` (e.g. ``"eight_schools-eight_schools_noncentered"``) from ``root``.

    Example (needs ``../shared/data/posteriordb``, so not run as a doctest):
        >>> p = load_posterior("garch-garch11")  # doctest: +SKIP
        >>> p.model_name, p.reference.names  # doctest: +SKIP
        ('garch11', ('mu', 'alpha0', 'alpha1', 'beta1'))
    """
    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        raise FileNotFoundError(f"posteriordb root {root} is not a directory")
    full = _full_root(root)
    try:
        if full is not None:
            return _load_full(full, name)
        d = root / name
        if not (d / "posterior.json").is_file():
            raise FileNotFoundError(f"no posterior {name!r} under {root}")
        return _load_staged(d, name)
    except FileNotFoundError as e:
        available = list_posteriors(root)
        hint = f"; available: {', '.join(available[:20])}{' ...' if len(available) > 20 else ''}"
        raise FileNotFoundError(f"{e}{hint}") from None
    except KeyError as e:
        raise ValueError(f"posteriordb posterior {name!r}: metadata lacks {e}") from None
