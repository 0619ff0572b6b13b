r"""``StanModel(program, data)``: a Stan program and its data as a varinf :class:`~varinf.models.Model`.

The log density is Stan's ``log_prob`` with the Jacobian of Stan's own constraining transforms and every
normalizing constant (``propto = false``: ``y ~ normal(mu, sigma)`` keeps its :math:`-\tfrac12\log 2\pi`, so
the log evidence is that of the program's full target), in Stan's unconstrained space; gradients by Stan
Math's reverse mode, S points per C call. Draws are Stan's constrained parameters, named and shaped as
declared (``theta``: ``(S, 8)``), with transformed parameters and generated quantities beside them.
Summaries and the ArviZ export number elements from 1 as Stan does (``theta[1]``; ArviZ dims
``theta_dim_0`` with coordinates 1..8); :meth:`StanModel.columns` gives Stan's flat ``theta[1]`` columns in
Stan's column-major order (posteriordb's reference draws use them).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...errors import ModelError
from ...models.foreign import AbstractEngine, ForeignModel, Variable
from .build import compile_program
from .data import data_fingerprint, data_json, read_data
from .library import StanInstance, StanLibrary, StanRuntimeError

__all__ = ["StanEngine", "StanModel"]

_KINDS = {"p": "parameter", "tp": "derived", "gq": "generated"}


@dataclass(frozen=True)
class _Block:
    """One Stan variable in write_array's flat output: columns ``offset:offset+size`` in Stan's order."""

    variable: Variable
    offset: int
    flat_names: tuple[str, ...]


def _indices(flat: str, name: str, dims: list[int]) -> tuple[int, ...] | None:
    """``theta.2.3`` -> (1, 2) (0-based); ``z.1.imag`` -> (0, 1); None when it does not parse."""
    if flat == name:
        return () if not dims else None
    if not flat.startswith(name + "."):
        return None
    idx = []
    for part in flat[len(name) + 1 :].split("."):
        if part in ("real", "imag"):
            idx.append(0 if part == "real" else 1)
        elif part.isdigit():
            idx.append(int(part) - 1)
        else:
            return None
    return tuple(idx) if len(idx) == len(dims) and all(0 <= i < d for i, d in zip(idx, dims)) else None


def _layout(inst: StanInstance) -> tuple[list[_Block], Tensor]:
    """The variables of a program instance and the gather index that reorders Stan's flat columns into
    row-major arrays, variable after variable."""
    blocks, gather, pos = [], [], 0
    flat = inst.flat_names
    for line in inst.layout.splitlines():
        kind, name, *dims = line.split()
        dims = [int(d) for d in dims]
        n = 0  # this variable's columns: its flat names (robust to get_dims' limits, e.g. tuples)
        while pos + n < len(flat) and (flat[pos + n] == name or flat[pos + n].startswith((name + ".", name + ":"))):
            n += 1
        names = tuple(flat[pos : pos + n])
        idx = [_indices(f, name, dims) for f in names]
        if n == math.prod(dims) and all(i is not None for i in idx):
            shape = tuple(dims)
            order = [0] * n
            for j, i in enumerate(idx):
                order[_ravel(i, shape)] = j
        else:  # a shape the names do not explain (tuples): keep Stan's flat order
            shape, order = ((n,) if n != 1 else ()), list(range(n))
        dims_names = tuple(f"{name}_dim_{k}" for k in range(len(shape)))
        v = Variable(name, shape, _KINDS[kind], dims_names)
        blocks.append(_Block(v, pos, names))
        gather.extend(pos + j for j in order)
        pos += n
    return blocks, torch.tensor(gather, dtype=torch.long)


def _ravel(idx: tuple[int, ...], shape: tuple[int, ...]) -> int:
    j = 0
    for i, s in zip(idx, shape):
        j = j * s + i
    return j


class StanEngine(AbstractEngine):
    """Stan's log density, gradient and transforms for one program instance (see :class:`StanModel`)."""

    def __init__(self, inst: StanInstance, name: str, program_hash: str, data_hash: str, seed: int,
                 make_data=None):  # fmt: skip
        self.inst, self.name, self.dim = inst, name, inst.dim
        self.blocks, self.gather = _layout(inst)
        self.variables = tuple(b.variable for b in self.blocks)
        self.coords = {d: list(range(1, n + 1)) for v in self.variables for d, n in zip(v.dims, v.shape)}
        self.fingerprint = {"program": program_hash, "data": data_hash, "seed": int(seed)}
        self._num_params = inst.num_params
        self._param_order = torch.argsort(self.gather[: inst.num_params])
        self._make_data = make_data

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except StanRuntimeError as e:
            raise ModelError(f"{self.name}: Stan: {e}") from None

    def log_density_gradient(self, u: Tensor) -> tuple[Tensor, Tensor]:
        return self._call(self.inst.log_density_gradient, u)

    def log_density(self, u: Tensor, jacobian: bool = True) -> Tensor:
        return self._call(self.inst.log_density, u, jacobian)

    def explain(self, u: Tensor) -> str:
        try:
            self.inst.log_density(u.reshape(1, -1).contiguous(), True, True)
        except StanRuntimeError as e:
            return f"Stan: {e}"
        return ""

    def constrain(self, u: Tensor, derived: bool = True, seed: int = 0) -> dict[str, Tensor]:
        flat = self._call(self.inst.constrain, u, derived, derived, seed)
        values = flat[:, self.gather[: flat.shape[1]]]
        out, S = {}, u.shape[0]
        for b in self.blocks:
            n = len(b.flat_names)
            if b.offset + n > flat.shape[1]:
                break
            out[b.variable.name] = values[:, b.offset : b.offset + n].reshape(S, *b.variable.shape)
        return out

    def unconstrain(self, z: Mapping[str, Tensor]) -> Tensor:
        params = [b for b in self.blocks if b.variable.kind == "parameter"]
        S = next(iter(z.values())).shape[0]
        parts = [z[b.variable.name].reshape(S, -1) if b.variable.size else torch.zeros(S, 0) for b in params]
        flat = torch.cat(parts, 1).to(torch.float64)[:, self._param_order]
        try:
            return self.inst.unconstrain(flat)
        except StanRuntimeError as e:
            raise ModelError(f"{self.name}: these values are outside the parameters' constraints: {e}") from None

    def with_data(self, data) -> StanEngine:
        if self._make_data is None:
            raise NotImplementedError("this Stan engine cannot take new data")
        return self._make_data(data)


def _program(program: str | os.PathLike) -> tuple[str, str, Path | None, str]:
    """(text, the file name Stan's messages use, the folder for #include, a default model name)."""
    is_path = isinstance(program, os.PathLike) or (
        isinstance(program, str) and "\n" not in program and "{" not in program and program.strip() != ""
    )
    if not is_path:
        if not isinstance(program, str):
            raise TypeError(f"program must be Stan code or a path to a .stan file, got {type(program).__name__}")
        return program, "<string>", None, "stan_model"
    path = Path(program)
    if not path.is_file():
        raise FileNotFoundError(f"Stan program {path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read Stan program {path}: {e}") from None
    stem = path.stem if path.stem != "model" or not path.resolve().parent.name else path.resolve().parent.name
    return text, path.name, path.resolve().parent, stem


def _display_name(name: str) -> str:
    return re.sub(r"\s+", "_", name.strip()) or "stan_model"


class StanModel(ForeignModel):
    """A Stan program with its data, as a varinf model.

    Args:
        program: a path to a ``.stan`` file, or the program's text.
        data: a dict (numbers, lists, NumPy arrays, torch tensors) or a path to a JSON data file (CmdStan's
            format); ``None`` for a program without data.
        seed: the seed of the ``transformed data`` block's random numbers (if it draws any).
        name: a label for summaries (default: the file's name; a file called ``model.stan`` is named after
            its folder).
        progress: a status line on stderr while compiling (default: when stderr is a terminal).

    The first use of a program compiles it (stanc, then g++; a status line on a terminal) into the cache
    (:mod:`varinf.bridges.stan.build`); later uses load it in milliseconds.

    Raises:
        StanCompileError: stanc rejects the program (its message, file, line and column, on one line).
        StanToolchainError: httpstan or a C++ compiler is missing (what to install).
        ModelError: the data do not match the ``data`` block (Stan's own message: the variable, the sizes),
            or the program has no parameters.

    Example::

        import varinf
        model = varinf.StanModel("eight_schools.stan", "eight_schools.json")
        res = varinf.fit(model)
        res.draws()["theta"].shape    # torch.Size([1000, 8])
    """

    def __init__(self, program: str | os.PathLike, data: Mapping[str, Any] | str | os.PathLike | None = None, *,
                 seed: int = 0, name: str | None = None, progress: bool | None = None):  # fmt: skip
        text, filename, folder, default = _program(program)
        name = _display_name(name or default)

        def has_parameters(info: dict) -> None:
            if not info.get("parameters"):
                raise ModelError(f"{name}: the program has no parameters block, so there is no posterior to fit "
                                 "(Stan's fixed_param sampler runs such programs)")  # fmt: skip

        compiled = compile_program(text, filename, folder, progress, has_parameters)
        library = StanLibrary.load(compiled.library)
        inputs = compiled.info.get("inputs", {})

        def make_engine(d) -> StanEngine:
            raw = read_data(d)
            js = data_json(raw, inputs)
            try:
                inst = StanInstance(library, js, seed)
            except StanRuntimeError as e:
                missing = sorted(set(inputs) - set(raw))
                hint = f" (fields missing: {', '.join(missing)})" if missing else ""
                raise ModelError(f"{name}: the data do not match the program's data block: {e}{hint}") from None
            return StanEngine(inst, name, compiled.key, data_fingerprint(js), seed, make_engine)

        engine = make_engine(data)
        super().__init__(engine, name)
        self.program = text
        self.library_path = compiled.library
        self.info = compiled.info

    def columns(self, draws: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Draws ``{name: (S, *shape)}`` as Stan's flat columns ``{"theta[1]": (S,), ...}`` in Stan's output
        order (column-major within a variable); variables absent from ``draws`` are skipped."""
        out = {}
        for b in self.engine.blocks:
            v = draws.get(b.variable.name)
            if v is None:
                continue
            flat = torch.as_tensor(v).reshape(v.shape[0], -1)
            order = self.engine.gather[b.offset : b.offset + len(b.flat_names)] - b.offset
            inverse = torch.argsort(order)
            for j, col in enumerate(b.flat_names):
                out[_stan_name(col)] = flat[:, inverse[j]]
        return out


def _stan_name(flat: str) -> str:
    """``theta.2.3`` -> ``theta[2,3]`` (Stan's display names)."""
    name, _, rest = flat.partition(".")
    return f"{name}[{rest.replace('.', ',')}]" if rest else name
