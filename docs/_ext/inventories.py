"""Offline intersphinx inventories for Python, SciPy, NumPy, PyTorch and ArviZ.

The build machines reach no documentation site, so intersphinx cannot download ``objects.inv``.
This extension fills ``intersphinx_mapping`` from files on the machine before intersphinx reads it:

* **Python and SciPy**: the real inventories that Debian's documentation packages install
  (``python3.11-doc``: ``/usr/share/doc/python3.11/html/objects.inv``; ``python-scipy-doc``:
  ``/usr/share/doc/python-scipy-doc/html/objects.inv``), linked to the matching online versions.
* **NumPy, PyTorch, ArviZ** (no such package exists) and SciPy when Debian's file is absent: inventories
  written here, at build time, from the *installed* packages' public names, with the page layout each
  project's site uses (e.g. ``generated/torch.nn.Module.html#torch.nn.Module``). They cover the names the
  installed version exports, so a reference to a name that does not exist stays plain text.

Nothing is fetched; a missing source only means fewer outbound links (never a warning).
"""

from __future__ import annotations

import importlib
import inspect
import zlib
from pathlib import Path

DEBIAN = {
    "python": ("https://docs.python.org/3.11/", Path("/usr/share/doc/python3.11/html/objects.inv")),
    "scipy": ("https://docs.scipy.org/doc/scipy-1.10.1/", Path("/usr/share/doc/python-scipy-doc/html/objects.inv")),
}
SITES = {
    "numpy": "https://numpy.org/doc/stable/",
    "torch": "https://docs.pytorch.org/docs/stable/",
    "arviz": "https://python.arviz.org/en/stable/",
    "scipy": "https://docs.scipy.org/doc/scipy/",
}


def _public(module):
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    for name in names:
        try:
            obj = getattr(module, name)
        except Exception:  # lazy attributes that fail to import are simply not linked
            continue
        yield name, obj


def _role(obj) -> str | None:
    if inspect.isclass(obj):
        return "py:exception" if issubclass(obj, BaseException) else "py:class"
    if callable(obj):
        return "py:function"
    return None


def _generated(prefix: str, page: str, module_name: str):
    """Entries ``prefix.name -> page.format(full)#full`` for the public classes/functions of a module."""
    try:
        module = importlib.import_module(module_name)
    except Exception:
        return []
    out = []
    for name, obj in _public(module):
        role = _role(obj)
        if role is None:
            continue
        full = f"{prefix}.{name}"
        out.append((full, role, page.format(full=full) + f"#{full}"))
    return out


def torch_entries():
    import torch.distributions as dist

    out = [
        ("torch.Tensor", "py:class", "tensors.html#torch.Tensor"),
        ("torch.dtype", "py:class", "tensor_attributes.html#torch.dtype"),
        ("torch.device", "py:class", "tensor_attributes.html#torch.device"),
        ("torch.Generator", "py:class", "generated/torch.Generator.html#torch.Generator"),
        ("torch.optim.Optimizer", "py:class", "optim.html#torch.optim.Optimizer"),
        ("torch.utils.data.Dataset", "py:class", "data.html#torch.utils.data.Dataset"),
        ("torch.utils.data.DataLoader", "py:class", "data.html#torch.utils.data.DataLoader"),
    ]
    skip = {e[0] for e in out}
    for full, role, uri in _generated("torch", "generated/{full}.html", "torch"):
        if full not in skip:
            out.append((full, role, uri))
    out += _generated("torch.nn", "generated/{full}.html", "torch.nn")
    out += _generated("torch.nn.functional", "generated/{full}.html", "torch.nn.functional")
    out += _generated("torch.func", "generated/{full}.html", "torch.func")
    out += [e for e in _generated("torch.optim", "generated/{full}.html", "torch.optim") if e[0] not in skip]
    # torch.distributions is one page whose anchors name the defining module (torch.distributions.normal.Normal)
    for name, obj in _public(dist):
        role = _role(obj)
        if role is None:
            continue
        anchor = f"{obj.__module__}.{name}" if getattr(obj, "__module__", "").startswith("torch.distributions") else f"torch.distributions.{name}"
        for alias in {f"torch.distributions.{name}", anchor}:
            out.append((alias, role, f"distributions.html#{anchor}"))
    for name in ("Constraint", "constraints"):
        out.append((f"torch.distributions.constraints.{name}", "py:class",
                    "distributions.html#torch.distributions.constraints.Constraint"))
    return out


def numpy_entries():
    out = [
        ("numpy.random.Generator", "py:class", "reference/random/generator.html#numpy.random.Generator"),
        ("numpy.random.default_rng", "py:function", "reference/random/generator.html#numpy.random.default_rng"),
    ]
    out += _generated("numpy", "reference/generated/{full}.html", "numpy")
    return out


def arviz_entries():
    return _generated("arviz", "api/generated/{full}.html", "arviz")


def scipy_entries():
    out = []
    for sub in ("stats", "special", "optimize", "sparse", "linalg", "integrate"):
        out += _generated(f"scipy.{sub}", "reference/generated/{full}.html", f"scipy.{sub}")
    return out


GENERATED = {"numpy": numpy_entries, "torch": torch_entries, "arviz": arviz_entries, "scipy": scipy_entries}


def write_inventory(path: Path, project: str, version: str, entries) -> None:
    """An intersphinx inventory, format version 2 (header, then zlib-compressed lines)."""
    seen, lines = set(), []
    for name, role, uri in entries:
        if (name, role) in seen:
            continue
        seen.add((name, role))
        lines.append(f"{name} {role} 1 {uri} -\n")
    header = f"# Sphinx inventory version 2\n# Project: {project}\n# Version: {version}\n"
    header += "# The remainder of this file is compressed using zlib.\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.encode() + zlib.compress("".join(lines).encode()))


def fill_mapping(app, config) -> None:
    out = Path(app.outdir).parent / "inventories"
    mapping = dict(config.intersphinx_mapping or {})
    for key, (url, path) in DEBIAN.items():
        if path.is_file():
            mapping[key] = (url, str(path))
    for key, make in GENERATED.items():
        if key in mapping:
            continue
        try:
            version = importlib.import_module(key).__version__
            entries = make()
        except Exception:  # not installed: no links to it
            continue
        inv = out / f"{key}.inv"
        write_inventory(inv, key, version, entries)
        mapping[key] = (SITES[key], str(inv))
    config.intersphinx_mapping = mapping


def setup(app):
    app.connect("config-inited", fill_mapping, priority=100)  # intersphinx normalizes at priority 800
    return {"parallel_read_safe": True, "parallel_write_safe": True}
