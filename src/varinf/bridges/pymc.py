r"""``from_pymc(pm_model)``: a PyMC model as a varinf model.

PyMC's own graphs, compiled once by PyTensor and batched over draws:

- the log density in PyMC's transformed space, ``pm_model.logp(jacobian=True)`` (value variables such as
  ``sigma_log__``; PyMC's default transforms), and its gradient ``pytensor.grad``, written for one flat vector
  ``u`` of all value variables and vectorized over a ``(S, D)`` matrix with ``vectorize_graph``;
- the constrained free variables and deterministics (``replace_rvs_by_values``), the inverse (each variable's
  transform ``forward``), and the observed variables drawn afresh given the draws (posterior predictive
  replication, one random generator per variable seeded per call).

Draws come back under PyMC's names, with the model's ``dims`` and ``coords`` (summaries name scalars
``theta[Choate]``; the ArviZ export carries them). ``predict(data={"x": new_x})`` replaces ``pm.Data`` containers
in fresh graphs (the user's model is not modified) and draws the observed variables there.

**Refused** (one line naming the variable): discrete free variables (marginalize them, or use PyMC's own
samplers), and a log density that draws random numbers (``pm.Minibatch``: varinf reads every row; write a
varinf ``Model`` with data and ``batch_size`` for minibatches).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from ..errors import ModelError
from ..models.foreign import AbstractEngine, ForeignModel, Variable

__all__ = ["PyMCEngine", "from_pymc"]


def _imports():
    try:
        import pymc
        import pytensor
    except ImportError as e:
        raise ImportError(f"PyMC models need the pymc extra: pip install 'varinf[pymc]' ({e})") from None
    return pymc, pytensor


class PyMCEngine(AbstractEngine):
    """PyMC's log density, gradient and transforms for one model (see the module docstring)."""

    def __init__(self, pm_model, name: str | None = None, data: Mapping | None = None):
        pm, pytensor = _imports()
        import pytensor.tensor as pt

        try:
            from pytensor.graph.traversal import ancestors
        except ImportError:  # PyTensor before 2.31
            from pytensor.graph.basic import ancestors
        from pytensor.graph.replace import graph_replace, vectorize_graph
        from pytensor.tensor.random.type import RandomGeneratorType

        if not isinstance(pm_model, pm.Model):
            raise TypeError(f"from_pymc takes a pymc.Model, got {type(pm_model).__name__}")
        m = self.pm_model = pm_model
        self.name = name or (m.name or "pymc_model")
        self.data = dict(data or {})
        discrete = [m.values_to_rvs[v].name for v in m.discrete_value_vars] if m.value_vars else []
        if discrete:
            raise ModelError(
                f"{self.name}: free variable {discrete[0]!r} is discrete; varinf needs continuous latents: "
                "marginalize it out of the model (e.g. pm.Mixture instead of a categorical assignment)"
            )
        givens = self._data_givens(pm, pt)
        point = m.initial_point()
        values = list(m.value_vars)
        shapes = [tuple(int(s) for s in np.shape(point[v.name])) for v in values]
        sizes = [math.prod(s) for s in shapes]
        self.dim = sum(sizes)
        u = pt.dvector("u")
        pieces, o = {}, 0
        for v, shape, n in zip(values, shapes, sizes):
            pieces[v] = u[o : o + n].reshape(shape).astype(v.dtype) if shape else u[o].astype(v.dtype)
            o += n
        U = pt.dmatrix("U")

        def batched(outputs):
            outs = graph_replace(outputs, {**givens, **pieces}, strict=False)
            return vectorize_graph(outs, replace={u: U})

        logp = m.logp(jacobian=True)
        if any(isinstance(a.type, RandomGeneratorType) for a in ancestors([logp])):
            raise ModelError(f"{self.name}: the log density draws random numbers (pm.Minibatch?); varinf reads every "
                             "row: use the full data (or a varinf Model with batch_size)")  # fmt: skip

        def value_and_grad():
            logp_u = graph_replace(logp, {**givens, **pieces}, strict=False)
            return vectorize_graph([logp_u, pytensor.grad(logp_u, u)], replace={u: U})

        # built and compiled on first use (PyTensor's C compilation takes seconds per function; an engine on new
        # data for predictions never needs the log density, whose observations may no longer match)
        self._compile = {
            "value_and_grad": lambda: pytensor.function([U], value_and_grad()),
            "log_p": lambda: pytensor.function([U], value_and_grad()[0]),
            "log_joint": lambda: pytensor.function([U], batched(m.logp(jacobian=False))),
        }
        self._compiled: dict = {}

        free, determ, observed = list(m.free_RVs), list(m.deterministics), list(m.observed_RVs)
        constrained = m.replace_rvs_by_values(free + determ)
        self._post = pytensor.function([U], batched(constrained))
        self._free, self._determ = [v.name for v in free], [v.name for v in determ]
        shape_of = {
            v.name: tuple(int(s) for s in np.shape(x))
            for v, x in zip(free + determ, self._post(np.zeros((1, self.dim))))
        }
        shape_of = {k: s[1:] for k, s in shape_of.items()}
        self._compile["unconstrain"] = lambda: self._unconstrain_fn(pytensor, pt, graph_replace, vectorize_graph,
                                                                   givens, values, free)  # fmt: skip
        self._replicate, self._rngs = self._replicate_fn(pytensor, pt, graph_replace, vectorize_graph, givens, free,
                                                         observed)  # fmt: skip
        obs_shapes = {}
        if observed:
            outs = self._replicate(*self._seeded(0), *[np.zeros((1, *shape_of[k])) for k in self._free])
            obs_shapes = {v.name: tuple(np.shape(x))[1:] for v, x in zip(observed, outs)}
        dims = {k: tuple(d if d is not None else f"{k}_dim_{i}" for i, d in enumerate(v))
                for k, v in m.named_vars_to_dims.items()}  # fmt: skip
        self.variables = (
            *(Variable(k, shape_of[k], "parameter", dims.get(k, ())) for k in self._free),
            *(Variable(k, shape_of[k], "derived", dims.get(k, ())) for k in self._determ),
            *(Variable(k, s, "generated", dims.get(k, ())) for k, s in obs_shapes.items()),
        )
        used = {d for v in self.variables for d in v.dims}
        self.coords = {k: list(c) for k, c in m.coords.items() if k in used and c is not None}
        self._observed = [v.name for v in observed]
        self.fingerprint = {"model": self.name, "free": [f"{k}{shape_of[k]}" for k in self._free],
                            "data": self._data_hash(m)}  # fmt: skip

    # ---------------------------------------------------------------------------------------------- building
    def _data_givens(self, pm, pt) -> dict:
        givens = {}
        for name, value in self.data.items():
            try:
                var = self.pm_model[name]
            except KeyError:
                raise ModelError(f"{self.name}: no data container {name!r} in the model") from None
            if not hasattr(var, "get_value"):
                raise ModelError(f"{self.name}: {name!r} is not a data container (pm.Data); it cannot be replaced")
            new = np.asarray(value, dtype=var.dtype)
            if new.ndim != var.ndim:
                raise ModelError(f"{self.name}: data {name!r} has {new.ndim} dimensions, the model's {var.ndim}")
            givens[var] = pt.constant(new, name=name)
        return givens

    def _data_hash(self, m) -> str:
        h = hashlib.sha256()
        for v in [*m.data_vars, *m.observed_RVs]:
            value = m.rvs_to_values.get(v, v)
            arr = value.get_value() if hasattr(value, "get_value") else getattr(value, "data", None)
            if v.name in self.data:
                arr = np.asarray(self.data[v.name])
            if arr is not None:
                a = np.asarray(arr)
                h.update(v.name.encode() + str(a.shape).encode() + np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]

    def _unconstrain_fn(self, pytensor, pt, graph_replace, vectorize_graph, givens, values, free):
        """Constrained free variables (one placeholder each) -> the flat unconstrained vector, batched."""
        m = self.pm_model
        z = [pt.tensor(name=f"{rv.name}_value", dtype="float64", shape=(None,) * rv.ndim) for rv in free]
        to_z = dict(zip(free, z))
        parts = []
        for rv, zv in zip(free, z):
            t = m.rvs_to_transforms.get(rv)
            out = zv if t is None else t.forward(zv, *rv.owner.inputs)
            parts.append(pt.as_tensor(out).astype("float64").ravel())
        flat = graph_replace(pt.concatenate(parts) if parts else pt.zeros(0), {**givens, **to_z}, strict=False)
        Z = [pt.tensor(name=f"{rv.name}_batch", dtype="float64", shape=(None,) * (rv.ndim + 1)) for rv in free]
        out = vectorize_graph(flat, replace=dict(zip(z, Z)))
        return pytensor.function(Z, out, on_unused_input="ignore")

    def _replicate_fn(self, pytensor, pt, graph_replace, vectorize_graph, givens, free, observed):
        """Observed variables drawn given the constrained free variables, one generator each: batched over draws
        where PyTensor can vectorize the random variables, else one compiled call per draw (random variables
        with an explicit ``size``, e.g. from ``dims``, do not vectorize)."""
        if not observed:
            return None, []
        from pymc.pytensorf import find_rng_nodes
        from pytensor.tensor.random.type import random_generator_type

        z = [pt.tensor(name=f"{rv.name}_value", dtype="float64", shape=(None,) * rv.ndim) for rv in free]
        outs = graph_replace(list(observed), {**givens, **dict(zip(free, z))}, strict=False)
        old = find_rng_nodes(outs)
        rngs = [random_generator_type(f"rng{i}") for i in range(len(old))]
        outs = graph_replace(outs, dict(zip(old, rngs)), strict=False)
        Z = [pt.tensor(name=f"{rv.name}_batch", dtype="float64", shape=(None,) * (rv.ndim + 1)) for rv in free]
        try:
            batched = vectorize_graph(outs, replace=dict(zip(z, Z)))
        except (ValueError, NotImplementedError, TypeError):
            one = pytensor.function([*rngs, *z], outs, on_unused_input="ignore")

            def per_draw(*args):
                gens, values = args[: len(rngs)], args[len(rngs) :]
                draws = [one(*gens, *(v[s] for v in values)) for s in range(len(values[0]) if values else 1)]
                return [np.stack([d[i] for d in draws]) for i in range(len(outs))]

            return per_draw, rngs
        return pytensor.function([*rngs, *Z], batched, on_unused_input="ignore"), rngs

    def _seeded(self, seed: int) -> list:
        return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(self._rngs))]

    def _fn(self, name: str):
        fn = self._compiled.get(name)
        if fn is None:
            fn = self._compiled[name] = self._compile[name]()
        return fn

    # ---------------------------------------------------------------------------------------------- batched calls
    def log_density_gradient(self, u: Tensor) -> tuple[Tensor, Tensor]:
        lp, grad = self._fn("value_and_grad")(u.numpy())
        return torch.from_numpy(np.asarray(lp, dtype=np.float64)), torch.from_numpy(np.asarray(grad, dtype=np.float64))

    def log_density(self, u: Tensor, jacobian: bool = True) -> Tensor:
        fn = self._fn("log_p" if jacobian else "log_joint")
        return torch.from_numpy(np.asarray(fn(u.numpy()), dtype=np.float64))

    def constrain(self, u: Tensor, derived: bool = True, seed: int = 0) -> dict[str, Tensor]:
        outs = self._post(u.numpy())
        names = self._free + self._determ
        out = {
            k: torch.from_numpy(np.asarray(v, dtype=np.float64))
            for k, v in zip(names, outs)
            if derived or k in self._free
        }
        if derived and self._replicate is not None:
            reps = self._replicate(*self._seeded(seed), *[np.asarray(out[k]) for k in self._free])
            out.update({k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in zip(self._observed, reps)})
        return out

    def unconstrain(self, z: Mapping[str, Tensor]) -> Tensor:
        args = [np.asarray(torch.as_tensor(z[k], dtype=torch.float64)) for k in self._free]
        return torch.from_numpy(np.asarray(self._fn("unconstrain")(*args), dtype=np.float64)).reshape(-1, self.dim)

    def with_data(self, data) -> PyMCEngine:
        if not isinstance(data, Mapping):
            raise NotImplementedError("new data for a PyMC model are a dict {data container name: values}")
        return PyMCEngine(self.pm_model, self.name, {**self.data, **data})


def from_pymc(pm_model, name: str | None = None) -> ForeignModel:
    """A ``pymc.Model`` as a varinf model (see the module docstring).

    Example::

        import pymc as pm, varinf
        with pm.Model(coords={"school": names}) as schools:
            mu = pm.Normal("mu", 0, 5); tau = pm.HalfCauchy("tau", 5)
            eta = pm.Normal("eta", 0, 1, dims="school")
            pm.Normal("y", mu + tau * eta, sigma, observed=y, dims="school")
        res = varinf.fit(varinf.from_pymc(schools))
        res.summary()
    """
    return ForeignModel(PyMCEngine(pm_model, name))
