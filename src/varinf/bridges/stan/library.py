"""ctypes bindings of ``glue.cpp``: one :class:`StanLibrary` per compiled program (loaded once per process),
one :class:`StanInstance` per program + data.

Arrays cross as raw pointers to float64 CPU torch tensors (``data_ptr()``: no copies, no NumPy); ctypes releases
the GIL during each call. Errors come back as C strings, freed here, and are raised as :class:`StanRuntimeError`
with Stan's message cleaned of the generated class's name.
"""

from __future__ import annotations

import ctypes
import re
import threading
import weakref
from pathlib import Path

import torch
from torch import Tensor

from .build import CLASS_NAME

__all__ = ["StanInstance", "StanLibrary", "StanRuntimeError", "clean_message"]

_P, _I, _U = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint
_LOCK = threading.Lock()
_LOADED: dict[str, StanLibrary] = {}


class StanRuntimeError(RuntimeError):
    """Stan raised an error that is not a rejection (construction from data, a bug in the program)."""


def clean_message(msg: str) -> str:
    """Stan's message on one line, without the generated class's name or the leading ``Exception: ``."""
    msg = msg.replace(f"{CLASS_NAME}_namespace::{CLASS_NAME}: ", "").replace(f"{CLASS_NAME}_namespace::", "")
    msg = re.sub(r"^(Exception|Error): ", "", msg.strip())
    return " ".join(msg.split())


class StanLibrary:
    """The C functions of one compiled program's shared library."""

    def __init__(self, path: Path):
        self.path = Path(path)
        lib = ctypes.CDLL(str(self.path))
        sig = {
            "vf_glue_version": (ctypes.c_char_p, []),
            "vf_free_string": (None, [_P]),
            "vf_new": (_P, [ctypes.c_char_p, _U, _P]),
            "vf_delete": (None, [_P]),
            "vf_name": (ctypes.c_char_p, [_P]),
            "vf_layout": (ctypes.c_char_p, [_P]),
            "vf_flat_names": (ctypes.c_char_p, [_P]),
            "vf_unconstrained_names": (ctypes.c_char_p, [_P]),
            "vf_sizes": (None, [_P, _P]),
            "vf_log_density": (_I, [_P, _I, _P, _I, _I, _P, _P]),
            "vf_log_density_gradient": (_I, [_P, _I, _P, _I, _P, _P, _P]),
            "vf_log_density_gradient_repeat": (_I, [_P, _I, _P, _I, _P, _P, _I, _P]),
            "vf_constrain": (_I, [_P, _I, _P, _I, _I, _U, _P, _P]),
            "vf_unconstrain": (_I, [_P, _I, _P, _P, _P]),
        }
        for name, (res, args) in sig.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        self.lib = lib

    @classmethod
    def load(cls, path: Path) -> StanLibrary:
        key = str(Path(path).resolve())
        with _LOCK:
            if key not in _LOADED:
                _LOADED[key] = cls(Path(key))
            return _LOADED[key]

    def take_error(self, err: ctypes.c_void_p) -> str:
        if not err.value:
            return "unknown error"
        msg = ctypes.string_at(err.value).decode("utf-8", "replace")
        self.lib.vf_free_string(err)
        return clean_message(msg)


class StanInstance:
    """One program constructed on one data set: sizes, names, and the batched C calls on torch tensors."""

    def __init__(self, library: StanLibrary, data_json: str, seed: int = 0):
        self.library = lib = library
        err = ctypes.c_void_p()
        handle = lib.lib.vf_new(data_json.encode("utf-8"), int(seed) & 0xFFFFFFFF, ctypes.byref(err))
        if not handle:
            raise StanRuntimeError(lib.take_error(err))
        self.handle = handle
        self._finalizer = weakref.finalize(self, lib.lib.vf_delete, handle)
        sizes = (ctypes.c_int * 4)()
        lib.lib.vf_sizes(handle, sizes)
        self.dim, self.num_params, self.num_tparams, self.num_gqs = (int(s) for s in sizes)
        self.layout = lib.lib.vf_layout(handle).decode()
        names = lib.lib.vf_flat_names(handle).decode()
        self.flat_names = names.split(",") if names else []
        unc = lib.lib.vf_unconstrained_names(handle).decode()
        self.unconstrained_names = unc.split(",") if unc else []
        f = lib.lib
        self._grad, self._lp, self._constrain, self._unconstrain = (
            f.vf_log_density_gradient, f.vf_log_density, f.vf_constrain, f.vf_unconstrain)  # fmt: skip

    def _fail(self, err: ctypes.c_void_p) -> StanRuntimeError:
        return StanRuntimeError(self.library.take_error(err))

    def log_density_gradient(self, u: Tensor, jacobian: bool = True) -> tuple[Tensor, Tensor]:
        """``u`` ``(S, D)`` float64 CPU contiguous -> ``lp (S,)``, ``grad (S, D)``; a rejected point: ``-inf``, NaN."""
        S = u.shape[0]
        lp = torch.empty(S, dtype=torch.float64)
        grad = torch.empty(S, self.dim, dtype=torch.float64)
        if S:
            err = ctypes.c_void_p()
            if self._grad(self.handle, S, u.data_ptr(), int(jacobian), lp.data_ptr(), grad.data_ptr(),
                          ctypes.byref(err)):  # fmt: skip
                raise self._fail(err)
        return lp, grad

    def gradient_repeat(self, u: Tensor, reps: int) -> None:
        """The same batched gradient ``reps`` times inside C++ (for timing the C++ side alone)."""
        S = u.shape[0]
        lp, grad = torch.empty(S, dtype=torch.float64), torch.empty(S, self.dim, dtype=torch.float64)
        err = ctypes.c_void_p()
        if self.library.lib.vf_log_density_gradient_repeat(self.handle, S, u.data_ptr(), 1, lp.data_ptr(),
                                                           grad.data_ptr(), int(reps), ctypes.byref(err)):  # fmt: skip
            raise self._fail(err)

    def log_density(self, u: Tensor, jacobian: bool = True, strict: bool = False) -> Tensor:
        """``(S,)`` without gradient; ``strict``: a rejection raises :class:`StanRuntimeError` with Stan's message."""
        S = u.shape[0]
        lp = torch.empty(S, dtype=torch.float64)
        if S:
            err = ctypes.c_void_p()
            if self._lp(self.handle, S, u.data_ptr(), int(jacobian), int(strict), lp.data_ptr(), ctypes.byref(err)):
                raise self._fail(err)
        return lp

    def constrain(self, u: Tensor, tparams: bool, gqs: bool, seed: int) -> Tensor:
        """``(S, K)`` in Stan's flat order: parameters, then transformed parameters, then generated quantities."""
        S = u.shape[0]
        K = self.num_params + (self.num_tparams if tparams else 0) + (self.num_gqs if gqs else 0)
        out = torch.empty(S, K, dtype=torch.float64)
        if S:
            err = ctypes.c_void_p()
            if self._constrain(self.handle, S, u.data_ptr(), int(tparams), int(gqs), int(seed) & 0xFFFFFFFF,
                               out.data_ptr(), ctypes.byref(err)):  # fmt: skip
                raise self._fail(err)
        return out

    def unconstrain(self, z: Tensor) -> Tensor:
        """``z`` ``(S, num_params)`` in Stan's flat order -> ``(S, D)``."""
        S = z.shape[0]
        z = z.to(torch.float64).contiguous()
        u = torch.empty(S, self.dim, dtype=torch.float64)
        if S:
            err = ctypes.c_void_p()
            if self._unconstrain(self.handle, S, z.data_ptr(), u.data_ptr(), ctypes.byref(err)):
                raise self._fail(err)
        return u
