r"""``from_numpyro(model, *args, **kwargs)``: a NumPyro model function and its arguments as a varinf model.

NumPyro's own ``initialize_model`` gives the potential energy :math:`-\log p_U(u)` (the log joint plus the log
Jacobian of ``biject_to(site.support)`` for every latent sample site) and the postprocessing that maps
unconstrained values to constrained sites and deterministic sites. varinf evaluates::

    jax.jit(jax.vmap(jax.value_and_grad(lambda u: -potential_fn(unravel(u)))))

on batches of draws (batch sizes rounded up to powers of two, so a fit compiles a handful of shapes, not one
per size), moving tensors between torch and JAX by DLPack (no copies on the CPU).

**float64.** Every JAX call runs inside ``jax.enable_x64(True)`` (``jax.experimental.enable_x64`` on older
JAX): a scoped switch, so the user's global JAX configuration is left as it was. Arrays the user created
*before* as float32 (``jnp.array`` without x64) stay float32 inside the model; pass NumPy arrays (or create
them under x64) for a float64 model.

**Refused** (one line naming the site): discrete latent sample sites (marginalize them, or use NumPyro's own
samplers), ``plate`` subsampling (varinf reads all rows; use ``Model(..., data=...)`` with ``batch_size`` for
minibatches), and ``param`` sites (varinf fits latent sample sites only).

**Names.** Latents are the model's latent sample sites, constrained, in the model's order; deterministic sites are
derived quantities; observed sites are generated again (``replicated`` in ``predict``: NumPyro's ``Predictive``
with the observations drawn afresh from the likelihood), named as the sites. ``predict(data={...})`` reruns them
with other keyword arguments (e.g. new covariates) given the same latent shapes.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from ..errors import ModelError
from ..models.foreign import AbstractEngine, ForeignModel, Variable

__all__ = ["NumPyroEngine", "from_numpyro"]


def _x64():
    """A scoped float64 switch for JAX (the global configuration is restored afterwards)."""
    import jax

    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # older JAX

    return enable_x64()


def _bucket(n: int) -> int:
    """Batch sizes compiled by JAX: powers of two (each new size is a new trace)."""
    return 1 << max(0, (n - 1).bit_length())


def _to_jax(u: Tensor):
    import jax

    return jax.dlpack.from_dlpack(u.contiguous())


def _to_torch(a) -> Tensor:
    return torch.from_dlpack(a)


def _padded(u: Tensor) -> tuple[Tensor, int]:
    """``u`` ``(S, D)`` padded with copies of its first row to a bucket size; returns (padded, S)."""
    S = u.shape[0]
    B = _bucket(S)
    if B == S:
        return u, S
    return torch.cat([u, u[:1].expand(B - S, -1)]).contiguous(), S


def _data_hash(args, kwargs) -> str:
    import jax

    h = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves((args, kwargs)):
        if leaf is None:
            continue
        a = np.asarray(leaf)
        h.update(str((a.dtype, a.shape)).encode() + a.tobytes() if a.dtype != object else repr(leaf).encode())
    return h.hexdigest()[:16]


class _ObservedAgain:
    """A handler that draws observed sites afresh (posterior predictive replication), keeping their names."""

    def __init__(self, fn):
        from numpyro.primitives import Messenger

        class Replicate(Messenger):
            def process_message(self, msg):
                if msg["type"] == "sample" and msg.get("is_observed"):
                    msg["value"], msg["is_observed"] = None, False

        self.handler = Replicate(fn)

    def __call__(self, *args, **kwargs):
        return self.handler(*args, **kwargs)


class NumPyroEngine(AbstractEngine):
    """NumPyro's potential function and transforms for one model and its arguments (see the module docstring)."""

    def __init__(self, model, args: tuple = (), kwargs: Mapping | None = None, name: str | None = None):
        try:
            import jax
            from jax.flatten_util import ravel_pytree
            from numpyro import handlers
            from numpyro.infer.util import constrain_fn, initialize_model, log_density, unconstrain_fn
        except ImportError as e:
            raise ImportError(f"NumPyro models need the numpyro extra: pip install 'varinf[numpyro]' ({e})") from None
        self.model, self.args, self.kwargs = model, tuple(args), dict(kwargs or {})
        self.name = name or getattr(model, "__name__", "numpyro_model")
        with _x64():
            trace = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace(*self.args, **self.kwargs)
            self._refuse(trace)
            try:
                info = initialize_model(jax.random.PRNGKey(0), model, model_args=self.args, model_kwargs=self.kwargs)
            except Exception as e:
                raise ModelError(
                    f"{self.name}: NumPyro could not initialize the model: {' '.join(str(e).split())}"
                ) from None
            flat0, unravel = ravel_pytree(info.param_info.z)
            potential, post = info.potential_fn, info.postprocess_fn
            args_, kwargs_ = self.args, self.kwargs
            latent = [k for k, s in trace.items() if s["type"] == "sample" and not s["is_observed"]]

            def log_p(flat):
                return -potential(unravel(flat))

            def log_joint(flat):  # without the Jacobian: at the constrained values
                return log_density(model, args_, kwargs_, constrain_fn(model, args_, kwargs_, unravel(flat)))[0]

            def unconstrain(params):
                return ravel_pytree(unconstrain_fn(model, args_, kwargs_, params))[0]

            self._value_and_grad = jax.jit(jax.vmap(jax.value_and_grad(log_p)))
            self._log_p = jax.jit(jax.vmap(log_p))
            self._log_joint = jax.jit(jax.vmap(log_joint))
            self._post = jax.jit(jax.vmap(lambda flat: {k: v for k, v in post(unravel(flat)).items() if k in latent}))
            self._unconstrain = jax.jit(jax.vmap(unconstrain))
        self.dim = int(flat0.size)
        self._latent = latent
        shape = lambda k: tuple(int(s) for s in np.shape(trace[k]["value"]))
        self._parameters = tuple(
            Variable(k, shape(k), "parameter", support=str(trace[k]["fn"].support)) for k in latent
        )
        self.coords = {}
        self._generator(self.kwargs)
        self.fingerprint = {
            "model": f"{getattr(model, '__module__', '')}.{self.name}",
            "data": _data_hash(args, kwargs),
        }

    def _generator(self, kwargs: dict) -> None:
        """Deterministic sites and every sample site that is not a latent (the observed ones drawn afresh, as
        ``Predictive`` with the observations left out would), for the model run with ``kwargs``."""
        import jax
        from numpyro import handlers

        model, args_, latent = self.model, self.args, set(self._latent)

        def generate(params, key):
            fn = handlers.seed(handlers.condition(_ObservedAgain(model), params), key)
            tr = handlers.trace(fn).get_trace(*args_, **kwargs)
            return {
                k: s["value"] for k, s in tr.items() if s["type"] in ("sample", "deterministic") and k not in latent
            }

        with _x64():
            self._generate = jax.jit(jax.vmap(generate))
            # shapes from one run with prior draws (the model's own shapes for these arguments)
            kinds = handlers.trace(handlers.seed(_ObservedAgain(model), rng_seed=0)).get_trace(*args_, **kwargs)
        shape = lambda k: tuple(int(s) for s in np.shape(kinds[k]["value"]))
        self.variables = (
            *(Variable(v.name, shape(v.name) if v.name in kinds else (), "parameter", support=v.support)
              for v in self._parameters),
            *(Variable(k, shape(k), "derived" if site["type"] == "deterministic" else "generated")
              for k, site in kinds.items() if site["type"] in ("sample", "deterministic") and k not in latent),
        )  # fmt: skip

    def _refuse(self, trace) -> None:
        for k, site in trace.items():
            if site["type"] == "plate":
                size, subsample = site["args"][0], site["args"][1] if len(site["args"]) > 1 else None
                if subsample is not None and subsample < size:
                    raise ModelError(
                        f"{self.name}: plate {k!r} subsamples {subsample} of {size} rows; varinf reads every row "
                        "(remove subsample_size; for minibatches write a varinf Model with data and batch_size)"
                    )
            elif site["type"] == "param":
                raise ModelError(
                    f"{self.name}: param site {k!r}: varinf fits latent sample sites only (give it a prior)"
                )
            elif site["type"] == "sample" and not site["is_observed"]:
                fn = site["fn"]
                if getattr(fn.support, "is_discrete", False) or site.get("infer", {}).get("enumerate"):
                    raise ModelError(
                        f"{self.name}: sample site {k!r} is discrete ({type(fn).__name__}); varinf needs continuous "
                        "latents: marginalize it out of the model"
                    )

    # ---------------------------------------------------------------------------------------------- batched calls
    def log_density_gradient(self, u: Tensor) -> tuple[Tensor, Tensor]:
        x, S = _padded(u)
        with _x64():
            lp, grad = self._value_and_grad(_to_jax(x))
            lp, grad = _to_torch(lp), _to_torch(grad)
        return (lp, grad) if x.shape[0] == S else (lp[:S], grad[:S])

    def log_density(self, u: Tensor, jacobian: bool = True) -> Tensor:
        x, S = _padded(u)
        with _x64():
            lp = _to_torch((self._log_p if jacobian else self._log_joint)(_to_jax(x)))
        return lp[:S]

    def constrain(self, u: Tensor, derived: bool = True, seed: int = 0) -> dict[str, Tensor]:
        import jax

        x, S = _padded(u)
        with _x64():
            params = self._post(_to_jax(x))
            out = {k: _to_torch(params[k])[:S] for k in self._latent}
            if derived:
                keys = jax.random.split(jax.random.PRNGKey(seed), x.shape[0])
                out.update({k: _to_torch(v)[:S] for k, v in self._generate(params, keys).items()})
        return {k: v.to(torch.float64) for k, v in out.items()}

    def unconstrain(self, z: Mapping[str, Tensor]) -> Tensor:
        S = next(iter(z.values())).shape[0]
        x = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in z.items()}
        B = _bucket(S)
        x = {k: torch.cat([v, v[:1].expand(B - S, *v.shape[1:])]) if B > S else v for k, v in x.items()}
        with _x64():
            u = _to_torch(self._unconstrain({k: _to_jax(v.contiguous()) for k, v in x.items()}))
        return u[:S].clone()

    def with_data(self, data) -> NumPyroEngine:
        """The same fitted latents, with the model run on other keyword arguments for its derived and generated
        sites (new covariates; ``y=None`` to draw the observations)."""
        if not isinstance(data, Mapping):
            raise NotImplementedError("new data for a NumPyro model are a dict of the model's keyword arguments")
        other = copy.copy(self)
        other.kwargs = {**self.kwargs, **data}
        other._generator(other.kwargs)
        return other


def from_numpyro(model, *args, **kwargs) -> ForeignModel:
    """A NumPyro model function called with ``*args, **kwargs`` (its data) as a varinf model.

    Example::

        import numpyro, numpyro.distributions as dist, numpy as np, varinf
        def model(x, y=None):
            beta = numpyro.sample("beta", dist.Normal(0, 1))
            sigma = numpyro.sample("sigma", dist.HalfNormal(1))
            numpyro.sample("y", dist.Normal(beta * x, sigma), obs=y)
        res = varinf.fit(varinf.from_numpyro(model, np.arange(5.0), y=np.arange(5.0)))
        res.draws()["beta"].shape      # torch.Size([1000])
    """
    return ForeignModel(NumPyroEngine(model, args, kwargs))
