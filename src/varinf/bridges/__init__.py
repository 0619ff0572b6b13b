"""Bring your own model: Stan programs, NumPyro and PyMC models as varinf models (README.md here).

- :class:`StanModel` ``(program, data)``: compiled through stanc and g++ (``stan`` extra);
- :func:`from_numpyro` ``(model, *args, **kwargs)``: a NumPyro model function and its arguments (``numpyro`` extra);
- :func:`from_pymc` ``(pm_model)``: a ``pymc.Model`` (``pymc`` extra).

Each returns a :class:`~varinf.models.foreign.ForeignModel`. The foreign libraries are imported only when
one of these is called.
"""

__all__ = ["StanCompileError", "StanModel", "StanToolchainError", "from_numpyro", "from_pymc"]

_STAN = ("StanCompileError", "StanModel", "StanToolchainError")


def __getattr__(name: str):  # the Stan bridge is imported on first use (keeps `import varinf` fast)
    if name in _STAN:
        from . import stan

        return getattr(stan, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def from_numpyro(model, *args, **kwargs):
    """A NumPyro model function with its arguments as a varinf model (:func:`varinf.bridges.numpyro.from_numpyro`)."""
    from .numpyro import from_numpyro as build

    return build(model, *args, **kwargs)


def from_pymc(pm_model, **options):
    """A ``pymc.Model`` as a varinf model (:func:`varinf.bridges.pymc.from_pymc`)."""
    from .pymc import from_pymc as build

    return build(pm_model, **options)
