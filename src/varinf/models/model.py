r"""An explicit model: named latents with supports, and a log joint :math:`\log p(x, z)` — given whole, or as a
prior and a per-observation likelihood over data (a *plate*, :mod:`.plate`).

ADVI view: with :math:`z = T(u)`, :math:`T` = ``biject_to(support)`` per latent,

.. math:: \log p_U(u) = \log p(x, T(u)) + \log|\det J_T(u)|,

which :meth:`Model.log_density` evaluates for ``u`` of shape ``(*S, D)`` (any leading sample
dimensions), returning shape ``(*S,)``. Units: nats.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.distributions import biject_to
from torch.distributions.transforms import AffineTransform, ComposeTransform, IndependentTransform, Transform

from ..distributed import World
from ..errors import ModelError
from ..utils.torch_private import default_validate_args, tree_map
from .check import check_model, likelihood_shape_message
from .chunking import DEFAULT_MAX_MEMORY, reduced_sum, rows_per_chunk
from .latent import Latent
from .plate import Plate

__all__ = ["Model", "distribution_validation"]


@dataclass(frozen=True)
class _Block:
    """Where one latent sits in the flat unconstrained vector."""

    latent: Latent
    transform: Transform
    ushape: tuple[int, ...]  # unconstrained shape (simplex of K has K-1)
    offset: int
    size: int
    ladj_sum_dims: int  # trailing dims of log|det J| to sum to reach one number per draw

    @property
    def identity(self) -> bool:
        t = self.transform
        while isinstance(t, IndependentTransform):
            t = t.base_transform
        return isinstance(t, ComposeTransform) and not t.parts


def _broadcast_shapes(*shapes: tuple[int, ...]) -> torch.Size:
    """``torch.broadcast_shapes`` in plain Python: torch's imports sympy on its first call (about 0.5 s of CPU)."""
    out = []
    for i in range(max(map(len, shapes)), 0, -1):
        sizes = {s[-i] for s in shapes if len(s) >= i and s[-i] != 1}
        if len(sizes) > 1:
            raise ValueError(f"shapes {', '.join(str(tuple(s)) for s in shapes)} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return torch.Size(out)


def _inverse_shape(t: Transform, shape: torch.Size) -> torch.Size:
    """``t.inverse_shape(shape)``, with affine parts (bounded supports) broadcast by :func:`_broadcast_shapes`."""
    if isinstance(t, ComposeTransform):
        for part in reversed(t.parts):
            shape = _inverse_shape(part, shape)
        return shape
    if isinstance(t, IndependentTransform):
        return _inverse_shape(t.base_transform, shape)
    if isinstance(t, AffineTransform):
        return _broadcast_shapes(tuple(shape), tuple(getattr(t.loc, "shape", ())), tuple(getattr(t.scale, "shape", ())))
    return t.inverse_shape(shape)


def _make_block(latent: Latent, offset: int) -> _Block:
    try:
        t = biject_to(latent.support)
    except NotImplementedError:
        raise ModelError(
            f"latent {latent.name!r}: support {latent.support!r} has no bijection to unconstrained space. "
            "Use a supported one (real, positive, unit_interval, interval, greater_than, less_than, simplex, "
            "ordered, positive_ordered, lower_cholesky, corr_cholesky, positive_definite) or register one "
            "with torch.distributions.biject_to.register."
        ) from None
    try:
        ushape = tuple(_inverse_shape(t, torch.Size(latent.shape)))
    except (ValueError, IndexError) as e:
        raise ModelError(
            f"latent {latent.name!r}: shape {latent.shape} does not fit support {latent.support!r} ({e})"
        ) from None
    ev = t.codomain.event_dim
    if len(latent.shape) < ev:
        raise ModelError(
            f"latent {latent.name!r}: support {latent.support!r} needs at least {ev} dimension(s), "
            f"got shape {latent.shape}"
        )
    size = math.prod(ushape)
    return _Block(latent, t, ushape, offset, size, len(latent.shape) - ev)


@contextlib.contextmanager
def distribution_validation(enabled: bool):
    """Switch torch.distributions argument/support validation on or off (restored afterwards).

    Fits run with it off: ``model.check()`` has evaluated the model once with it on, and per step the
    validation of every Distribution built inside a user's log density costs more ops than the arithmetic
    (eight schools: about 340 tensor ops per step with it). Code mapped over draws by ``torch.func.vmap``
    must run with it off (validation branches on tensor values, which vmap cannot batch)."""
    old = default_validate_args()
    torch.distributions.Distribution.set_default_validate_args(enabled)
    try:
        yield
    finally:
        torch.distributions.Distribution.set_default_validate_args(old)


def _takes_data(fn: Callable) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == "data" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


class Model(nn.Module):
    r"""A probabilistic model with named latents: a log joint, or a prior and a likelihood over data.

    Two forms:

    - **log joint** ``log_joint(**z) -> (*S,)``: the whole :math:`\log p(x, z)`, data captured however the
      user likes (closure, buffers). For models without a data plate (eight schools, posteriordb).
    - **prior + likelihood over a plate** ``data={name: tensor}``, every tensor with one observation per
      row (dimension 0): ``log_prior(**z)`` :math:`= \log p(z)` and ``log_likelihood(**z, data=batch)``
      :math:`= (\log p(x_i \mid z))_{i \in \mathrm{batch}}`, one value per row of ``batch``. The model then
      evaluates the full data in bounded-memory chunks (:mod:`.chunking`), fits on minibatches
      (``varinf.fit(model, batch_size=B)``) and across processes (``distributed=True`` under ``torchrun``).

    By default (``vectorized=None``) a plate model's functions are written for **one draw** (latents of
    their own shapes; ``log_likelihood`` returns ``(B,)``) and mapped over draws with ``torch.func.vmap``;
    a ``log_joint`` function is taken to handle leading sample dimensions itself (as before). Pass
    ``vectorized=True`` when the functions accept ``(*S, *shape)`` latents and return ``(*S,)`` /
    ``(*S, B)`` (faster: no vmap), ``vectorized=False`` when a ``log_joint`` is written for one draw.
    Subclasses override the methods ``log_joint``, or ``log_prior`` and ``log_likelihood``, with code
    that handles sample dimensions.

    Args:
        latents: the latent variables, in order (global: shared by all rows).
        log_joint: ``f(**z) -> Tensor`` (the log-joint form).
        log_prior, log_likelihood: the plate form (both required with ``data``).
        data: ``{name: tensor}`` with the observations along dimension 0.
        derived: ``f(**z, data) -> {name: tensor}``: quantities recorded with the draws (Stan's generated
            quantities, e.g. group means ``mu + tau * eta``), in summaries and the ArviZ export.
        simulate: ``f(**z, data) -> {name: tensor}``: replicated data given the latents (posterior
            predictive draws; names as the data they replicate). Random draws inside are independent per draw.
        name: what summaries, results and error messages call the model (default: the class name; the
            ``varinf`` CLI names a model from a file that has none after the file, e.g. ``poisson``).
        vectorized: see above.
        distributed: ``data`` is this process's block of rows of a ``torchrun`` job (rank order = row
            order; :func:`varinf.distributed.shard_rows`); sums over rows then include every process.
        max_memory: bytes the chunked evaluation may use for ``(draws × rows)`` temporaries (default 1 GiB).
        dims, coords: ArviZ's labels: ``dims={name: (dimension, ...)}`` names the axes of a latent or derived
            quantity, ``coords={dimension: labels}`` labels its elements (``{"school": ["Choate", ...]}``);
            summaries then name scalars ``theta[Choate]`` and the ArviZ export carries both. Axes without
            labels are numbered from 0.

    Example:
        >>> import torch
        >>> from torch.distributions import Normal
        >>> m = Model([Latent("mu")], log_prior=lambda mu: Normal(0.0, 1.0).log_prob(mu),
        ...           log_likelihood=lambda mu, data: Normal(mu, 1.0).log_prob(data["y"]),
        ...           data={"y": torch.tensor([0.3, -0.2, 1.1])})
        >>> m.log_density(torch.zeros(5, 1)).shape
        torch.Size([5])
    """

    def __init__(
        self,
        latents: Sequence[Latent],
        log_joint: Callable[..., Tensor] | None = None,
        *,
        log_prior: Callable[..., Tensor] | None = None,
        log_likelihood: Callable[..., Tensor] | None = None,
        data: Mapping[str, Tensor] | None = None,
        derived: Callable[..., Mapping[str, Tensor]] | None = None,
        simulate: Callable[..., Mapping[str, Tensor]] | None = None,
        name: str | None = None,
        vectorized: bool | None = None,
        distributed: bool = False,
        max_memory: int = DEFAULT_MAX_MEMORY,
        dims: Mapping[str, Sequence[str]] | None = None,
        coords: Mapping[str, Sequence] | None = None,
    ):
        super().__init__()
        latents = tuple(latents)
        self.name = name or type(self).__name__
        if not latents:
            raise ModelError("a model needs at least one latent variable")
        names = [lat.name for lat in latents]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ModelError(f"duplicate latent name(s): {sorted(dup)}")
        self.latents = latents
        self._fn, self._prior_fn, self._lik_fn = log_joint, log_prior, log_likelihood
        self._derived_fn, self._simulate_fn = derived, simulate
        plate_form = log_likelihood is not None or log_prior is not None
        if log_joint is not None and plate_form:
            raise ModelError(f"{self.name}: give either log_joint or log_prior + log_likelihood, not both")
        if plate_form and (log_prior is None or log_likelihood is None):
            missing = "log_prior" if log_prior is None else "log_likelihood"
            raise ModelError(f"{self.name}: the plate form needs both log_prior and log_likelihood ({missing} missing)")
        if log_likelihood is not None and data is None:
            raise ModelError(
                f"{self.name}: log_likelihood needs data={{name: tensor}} (observations along dimension 0)"
            )
        if data is not None and "data" in names:
            raise ModelError(f"{self.name}: a latent may not be called 'data' in a model with data")
        self._vectorized = vectorized if vectorized is not None else not plate_form
        self.dims = {str(k): tuple(map(str, v)) for k, v in (dims or {}).items()}
        self.coords = {str(k): list(v) for k, v in (coords or {}).items()}
        self.max_memory = int(max_memory)
        self.plate = Plate(data, distributed=distributed, owner=self.name) if data is not None else None
        blocks, offset = [], 0
        for lat in latents:
            b = _make_block(lat, offset)
            blocks.append(b)
            offset += b.size
        self._blocks = tuple(blocks)
        self.dim = offset
        self._all_identity = all(b.identity for b in blocks)
        self._sizes = [b.size for b in blocks]

    # ------------------------------------------------------------------ data
    @property
    def has_plate(self) -> bool:
        """Whether the model has data rows it can subsample, chunk and shard (the plate form)."""
        return self.plate is not None and (self._lik_fn is not None or _overrides(self, "log_likelihood"))

    @property
    def data(self) -> dict[str, Tensor] | None:
        """``{name: tensor}`` (this process's rows), or None for a model without data."""
        return self.plate.data if self.plate is not None else None

    @property
    def num_rows(self) -> int:
        """Observations in the whole data set (all processes); 0 without data."""
        return self.plate.total if self.plate is not None else 0

    @property
    def distributed(self) -> bool:
        return self.plate is not None and self.plate.distributed

    def _float(self) -> Tensor | None:
        return next((b for b in self.buffers() if b.is_floating_point()), None)

    # ------------------------------------------------------------------ the user's functions, batched over draws
    def log_prior(self, **z: Tensor) -> Tensor:
        r""":math:`\log p(z)` for latents ``(*S, *shape)``; returns ``(*S,)``."""
        if self._prior_fn is None:
            raise NotImplementedError(f"{type(self).__name__} has no log_prior (pass one, or override log_prior)")
        return self._prior_fn(**z) if self._vectorized else self._map(self._prior_fn, z)

    def log_likelihood(self, data: Mapping[str, Tensor] | None = None, **z: Tensor) -> Tensor:
        r""":math:`\log p(x_i \mid z)` for each row of ``data`` (default: all of this process's rows);
        latents ``(*S, *shape)``; returns ``(*S, B)``."""
        if self._lik_fn is None:
            raise NotImplementedError(f"{type(self).__name__} has no log_likelihood")
        data = self.data if data is None else data
        return self._lik_fn(**z, data=data) if self._vectorized else self._map(self._lik_fn, z, data)

    def log_joint(self, **z: Tensor) -> Tensor:
        """:math:`\\log p(x, z)` for named latents of shape ``(*S, *shape)``; returns ``(*S,)``.

        Plate models: prior plus the likelihood summed over every row (and process), in chunks."""
        if self._fn is not None:
            return self._fn(**z) if self._vectorized else self._map(self._fn, z)
        if self.has_plate:
            return self.log_prior(**z) + self.likelihood_sum(z)
        raise NotImplementedError(f"{type(self).__name__} must implement log_joint or be given one")

    def _batch_shape(self, z: Mapping[str, Tensor]) -> torch.Size:
        lat0 = self.latents[0]
        first = z[lat0.name]
        return first.shape[: first.dim() - len(lat0.shape)]

    def _map(self, fn: Callable, z: Mapping[str, Tensor], data=None, randomness: str = "error", pass_data=None):
        """Map one-draw ``fn`` over the leading sample dimensions of ``z`` with ``torch.func.vmap``."""
        S = self._batch_shape(z)
        flat = {k: v.reshape(-1, *v.shape[len(S) :]) for k, v in z.items()}
        with distribution_validation(False):
            if pass_data or (pass_data is None and data is not None):
                out = torch.func.vmap(lambda d, x: fn(**d, data=x), in_dims=(0, None), randomness=randomness)(
                    flat, data
                )
            else:
                out = torch.func.vmap(lambda d: fn(**d), randomness=randomness)(flat)
        return tree_map(lambda o: o.reshape((*S, *o.shape[1:])), out)

    # ------------------------------------------------------------------ sums over the plate
    def likelihood_sum(
        self, z: Mapping[str, Tensor], rows: Mapping[str, Tensor] | None = None, across_processes: bool = True
    ) -> Tensor:
        r""":math:`\sum_i \log p(x_i \mid z)` over ``rows`` (a dict of this process's rows; default: all of
        them), summed over the processes of a distributed model (unless ``across_processes=False``); ``(*S,)``.
        Evaluated in chunks within ``max_memory`` (:mod:`.chunking`)."""
        names = list(z)
        S = self._batch_shape(z)
        n = self.plate.size if rows is None else int(next(iter(rows.values())).shape[0])
        ref = z[names[0]]
        grad = torch.is_grad_enabled() and any(v.requires_grad for v in z.values())
        per = rows_per_chunk(math.prod(S), ref.element_size(), self.max_memory, grad)
        if rows is None:
            chunks = [self.plate.data] if per >= n else list(self.plate.chunks(per))
        elif per >= n:
            chunks = [rows]
        else:
            chunks = [{k: v[i : i + per] for k, v in rows.items()} for i in range(0, n, per)]

        def chunk_sum(values, chunk):
            ll = self.log_likelihood(chunk, **dict(zip(names, values)))
            b = int(next(iter(chunk.values())).shape[0])
            if tuple(ll.shape) != (*S, b):
                raise ModelError(likelihood_shape_message(self.name, tuple(ll.shape), tuple(S), b, self._vectorized))
            return ll.sum(-1)

        world = self.plate.world if across_processes else World()
        return reduced_sum(chunk_sum, [z[k] for k in names], chunks, world)

    def pointwise_log_likelihood(self, z: Mapping[str, Tensor], data: Mapping[str, Tensor] | None = None) -> Tensor:
        r"""The ``(*S, N)`` matrix :math:`\log p(x_i \mid z_s)` (no gradient) over ``data`` (default: this
        process's rows), evaluated in chunks. It is ``S × N`` numbers: for LOO on small data; large data
        should pass a subsample."""
        data = self.data if data is None else data
        S = self._batch_shape(z)
        n = int(next(iter(data.values())).shape[0])
        per = rows_per_chunk(math.prod(S), next(iter(z.values())).element_size(), self.max_memory)
        with torch.no_grad():
            parts = [self.log_likelihood({k: v[i : i + per] for k, v in data.items()}, **z) for i in range(0, n, per)]
        return torch.cat(parts, -1)

    # ------------------------------------------------------------------ derived quantities and replicated data
    def derived_quantities(
        self, z: Mapping[str, Tensor], data: Mapping[str, Tensor] | None = None
    ) -> dict[str, Tensor]:
        """``derived(**z, data)`` for latents ``(*S, *shape)`` over ``data`` (default: the model's rows):
        ``{name: (*S, ...)}`` (empty without ``derived``)."""
        fn = self._derived_fn
        if fn is None:
            return {}
        out = self._call_generator(fn, z, self.data if data is None else data, "error", "derived")
        clash = sorted(set(out) & {lat.name for lat in self.latents})
        if clash:
            raise ModelError(f"{self.name}: derived quantities {clash} have the same names as latents")
        return out

    def simulate_data(self, z: Mapping[str, Tensor], data: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """``simulate(**z, data)``: replicated data ``{name: (*S, ...)}`` for latents ``(*S, *shape)``,
        over ``data`` (default: the model's own rows); independent randomness per draw."""
        if self._simulate_fn is None:
            raise ModelError(f"{self.name}: no simulate function; pass Model(..., simulate=f) to draw replicated data")
        return self._call_generator(self._simulate_fn, z, self.data if data is None else data, "different", "simulate")

    def _call_generator(self, fn, z, data, randomness: str, what: str) -> dict[str, Tensor]:
        takes = _takes_data(fn)
        with torch.no_grad():
            if self._vectorized:
                out = fn(**z, data=data) if takes else fn(**z)
            else:
                out = self._map(fn, z, data, randomness, pass_data=takes)
        if not isinstance(out, Mapping) or not all(isinstance(v, Tensor) for v in out.values()):
            raise ModelError(f"{self.name}: {what} must return a dict of tensors, got {type(out).__name__}")
        return dict(out)

    # ------------------------------------------------------------------ transforms
    def split(self, u: Tensor) -> dict[str, Tensor]:
        """Cut a flat unconstrained ``(*S, D)`` into named unconstrained pieces ``(*S, *ushape)``."""
        if u.shape[-1] != self.dim:
            raise ModelError(f"{self.name}: expected unconstrained vectors of size {self.dim}, got {tuple(u.shape)}")
        S = u.shape[:-1]
        if len(self._blocks) == 1:  # no slicing: saves a slice and its backward (zeros + copy) per step
            b = self._blocks[0]
            return {b.latent.name: u if b.ushape == (self.dim,) else u.reshape(S + b.ushape)}
        pieces = u.split(self._sizes, dim=-1)  # one op forward, one in backward
        return {b.latent.name: p.reshape(S + b.ushape) for b, p in zip(self._blocks, pieces)}

    def constrain(self, u: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """Map ``u`` ``(*S, D)`` to named constrained latents and :math:`\\log|\\det J|` ``(*S,)``."""
        S = u.shape[:-1]
        if self._all_identity:
            return self.split(u), u.new_zeros(S)
        z, ladj = {}, u.new_zeros(S)
        for b, (name, ub) in zip(self._blocks, self.split(u).items()):
            if b.identity:
                z[name] = ub
                continue
            zb = b.transform(ub)
            j = b.transform.log_abs_det_jacobian(ub, zb)
            if b.ladj_sum_dims:
                j = j.reshape(*S, -1).sum(-1)
            z[name] = zb
            ladj = ladj + j
        return z, ladj

    def constrained(self, u: Tensor) -> dict[str, Tensor]:
        """Named constrained latents ``{name: (*S, *shape)}`` of ``u`` ``(*S, D)``: :meth:`constrain` without
        the Jacobian (what draws, summaries and predictions need; models whose Jacobian costs extra skip it)."""
        return self.constrain(u)[0]

    def element_names(self, name: str, shape: tuple[int, ...]) -> list[str]:
        """Names of the scalars of latent or derived quantity ``name`` of ``shape``, in row-major order:
        ``beta[0,1]``, or with ``coords`` for its ``dims`` ``theta[Choate]``."""
        if not shape:
            return [name]
        dims = self.dims.get(name, ())
        labels = []
        for i, n in enumerate(shape):
            coord = self.coords.get(dims[i], ()) if i < len(dims) else ()
            labels.append([str(c) for c in coord] if len(coord) == n else [str(j) for j in range(n)])
        return [f"{name}[{','.join(idx)}]" for idx in itertools.product(*labels)]

    def unconstrain(self, z: Mapping[str, Tensor]) -> Tensor:
        """Inverse of :meth:`constrain` (without the Jacobian): named ``(*S, *shape)`` -> ``(*S, D)``."""
        missing = [b.latent.name for b in self._blocks if b.latent.name not in z]
        if missing:
            raise ModelError(f"{self.name}: values missing for latent(s) {missing}")
        parts = []
        for b in self._blocks:
            v = torch.as_tensor(z[b.latent.name], dtype=torch.get_default_dtype())
            S = v.shape[: v.dim() - len(b.latent.shape)]
            if not bool(b.latent.support.check(v).all()):
                raise ModelError(f"latent {b.latent.name!r}: value outside its support {b.latent.support!r}")
            parts.append(b.transform.inv(v).reshape(*S, b.size))
        return torch.cat(parts, dim=-1)

    def log_density(self, u: Tensor) -> Tensor:
        """Unconstrained log density :math:`\\log p(x, T(u)) + \\log|\\det J_T(u)|`, shape ``(*S,)``."""
        if self._all_identity:  # hot path: no Jacobian term to add
            return self.log_joint(**self.split(u))
        z, ladj = self.constrain(u)
        return self.log_joint(**z) + ladj

    def log_density_and_score(self, u: Tensor) -> tuple[Tensor, Tensor] | None:
        """``(log_density(u), its gradient in u)`` without autograd, for models that know it in closed form
        (the fused Gaussian step then needs no backward pass); ``None`` (the default): use autograd."""
        return None

    # ------------------------------------------------------------------ checks
    def check(self, u: Tensor | None = None) -> None:
        """Evaluate the model at ``u`` (default: zeros, plus a second random point) and raise a
        :class:`ModelError` naming the latent, function or data row when a value is not finite or a function
        returns the wrong shape (:func:`.check.check_model`)."""
        check_model(self, u)

    def converted(self, device=None, dtype=None) -> Model:
        """The model on ``device`` with floating buffers (the data) in ``dtype``: ``self`` when nothing needs
        to change, else a copy, ``self`` left as it is. (``nn.Module.to`` converts in place: a fit asked to run
        in float32 would turn the user's float64 data into float32 behind their back.)"""
        dev = torch.device(device) if device is not None else None
        tensors = [*self.parameters(), *self.buffers()]
        if all((dev is None or _same_device(t.device, dev)) and (dtype is None or not t.is_floating_point()
                                                                 or t.dtype == dtype) for t in tensors):  # fmt: skip
            return self
        return _tree_copy(self).to(device=device, dtype=dtype)

    def extra_repr(self) -> str:
        return ", ".join(f"{lat.name}{list(lat.shape)}: {lat.support!r}" for lat in self.latents)


def _same_device(a: torch.device, b: torch.device) -> bool:
    """``cuda`` asks for the current CUDA device: ``cuda:0`` is the same place when that is current."""
    if b.index is None and a.type == b.type:
        return a.type != "cuda" or a.index == torch.cuda.current_device()
    return a == b


def _tree_copy(module: nn.Module) -> nn.Module:
    """A copy of the module tree with its own parameter, buffer and submodule dicts and new Parameter objects
    (sharing the tensors), so converting the copy in place leaves the original's tensors untouched."""
    clone = copy.copy(module)
    clone._modules = {k: None if m is None else _tree_copy(m) for k, m in module._modules.items()}
    clone._buffers = dict(module._buffers)
    clone._parameters = {
        k: None if p is None else nn.Parameter(p.detach(), requires_grad=p.requires_grad)
        for k, p in module._parameters.items()
    }
    return clone


def _overrides(model: Model, method: str) -> bool:
    return getattr(type(model), method) is not getattr(Model, method)
