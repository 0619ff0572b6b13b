r"""Models whose log density comes from another engine (Stan, NumPyro, PyMC): :class:`ForeignModel`.

The engine owns the unconstrained space :math:`\mathbb{R}^D`, its transforms and their Jacobians; varinf
asks it, for a batch of ``S`` points at once (one call, no per-draw Python)::

    engine.log_density_gradient(u)     u (S, D)  ->  log p_U(u) (S,), its gradient (S, D)
    engine.log_density(u, jacobian)    u (S, D)  ->  (S,), no gradient (jacobian=False: log p(x, T(u)))
    engine.constrain(u, derived, seed) u (S, D)  ->  {name: (S, *shape)}: parameters, and with derived=True
                                                     the derived quantities (Stan's transformed parameters and
                                                     generated quantities; deterministic sites)
    engine.unconstrain(z)              {name: (S, *shape)} parameters  ->  (S, D)

with :math:`\log p_U(u) = \log p(x, T(u)) + \log|\det J_T(u)|` in nats, every tensor float64 on the CPU.
:class:`ForeignModel` turns that into a :class:`~varinf.models.Model`: ``log_density(u)`` is an autograd
function around the batched value and gradient, so every method, family and diagnostic works unchanged.

**Second derivatives** (the Laplace start's Hessian, anything using ``create_graph=True``): the gradient
returned by the backward pass is itself differentiable; its backward gives Hessian-vector products by central
differences of the engine's exact gradient, :math:`Hv \approx (g(u + hv) - g(u - hv)) / 2h` with
:math:`h = \epsilon^{1/3} \max(1, \|u\|) / \|v\|` (relative error about :math:`\epsilon^{2/3} \approx 10^{-11}`
for smooth densities), both points of every draw in one batched call. A third derivative raises.

**Non-finite values.** A point the engine rejects (Stan's ``reject``, a domain error, a NaN) has log density
``-inf`` or NaN and a NaN gradient, exactly as a torch model's non-finite value: L-BFGS backs off, BaM drops
the draw, ADVI skips the step, importance weights are 0. Anything else the engine raises (a bug in the
program, an index out of range) is a one-line :class:`~varinf.models.ModelError`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ModelError
from .latent import Latent
from .model import Model

__all__ = ["AbstractEngine", "ForeignModel", "Variable"]

LOG_LIK = "log_lik"  # a generated quantity of this name is the pointwise log likelihood (az.loo)
_FD_EPS = float(torch.finfo(torch.float64).eps) ** (1 / 3)


@dataclass(frozen=True)
class Variable:
    """One named quantity of a foreign model.

    Attributes:
        name: as the engine names it (Stan's ``theta``, a NumPyro site, a PyMC variable).
        shape: the constrained shape of one draw.
        kind: ``"parameter"`` (a latent varinf fits), ``"derived"`` (a deterministic function of the
            parameters: Stan's transformed parameters, deterministic sites) or ``"generated"`` (may draw
            random numbers: Stan's generated quantities, replicated observations).
        dims: ArviZ dimension names, one per axis of ``shape`` (coordinates in the engine's ``coords``).
        support: a label for the constraint (``"real"``, ``"simplex"``, ``"lower=0"``), for messages.
    """

    name: str
    shape: tuple[int, ...]
    kind: str = "parameter"
    dims: tuple[str, ...] = ()
    support: str = "real"

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class AbstractEngine(ABC):
    """A foreign log density over a flat unconstrained space, batched (see the module docstring).

    Attributes set by subclasses: ``name``, ``dim`` (D), ``variables`` (:class:`Variable` s: parameters first,
    in the engine's order), ``coords`` (``{dimension: labels}`` for ArviZ), ``fingerprint`` (JSON-able: what
    identifies the program and its data, for ``varinf.load``).
    """

    name: str
    dim: int
    variables: tuple[Variable, ...]
    coords: dict[str, list]
    fingerprint: dict

    @abstractmethod
    def log_density_gradient(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """``u`` ``(S, D)`` float64 CPU, contiguous -> ``(log p_U(u) (S,), gradient (S, D))``."""

    @abstractmethod
    def log_density(self, u: Tensor, jacobian: bool = True) -> Tensor:
        """``u`` ``(S, D)`` -> ``(S,)`` without gradient; ``jacobian=False`` leaves out :math:`\\log|\\det J|`."""

    @abstractmethod
    def constrain(self, u: Tensor, derived: bool = True, seed: int = 0) -> dict[str, Tensor]:
        """``u`` ``(S, D)`` -> ``{name: (S, *shape)}`` float64: the parameters, and with ``derived`` every
        derived and generated quantity (random ones from a stream seeded by ``seed``)."""

    @abstractmethod
    def unconstrain(self, z: Mapping[str, Tensor]) -> Tensor:
        """Constrained parameters ``{name: (S, *shape)}`` -> ``(S, D)`` float64."""

    def explain(self, u: Tensor) -> str:
        """Why the log density is not finite at the single point ``u`` ``(D,)`` (the engine's message), or ``""``."""
        return ""

    def with_data(self, data) -> AbstractEngine:
        """The same program on other data (for predictions); engines that cannot raise ``NotImplementedError``."""
        raise NotImplementedError(f"{type(self).__name__} cannot take new data")

    @property
    def parameters(self) -> tuple[Variable, ...]:
        return tuple(v for v in self.variables if v.kind == "parameter")


def _as_engine_input(u: Tensor, dim: int) -> Tensor:
    """``(*S, D)`` in any dtype/device -> ``(prod S, D)`` float64, CPU, contiguous (no copy when it already is;
    checked in Python first: each torch call costs about a microsecond, a cheap model's gradient about as much)."""
    if u.dtype is torch.float64 and u.dim() == 2 and u.device.type == "cpu" and u.is_contiguous():
        return u.detach() if u.requires_grad else u
    return u.detach().reshape(-1, dim).to(device="cpu", dtype=torch.float64).contiguous()


def _like(t: Tensor, u: Tensor, shape) -> Tensor:
    """Engine output ``t`` in ``u``'s dtype and device, with ``shape``."""
    if t.dtype is not u.dtype or t.device != u.device:
        t = t.to(u)
    return t if t.shape == shape else t.reshape(shape)


class _LogDensity(torch.autograd.Function):
    """``log p_U(u)`` from one batched engine call that also returns the gradient (saved for backward)."""

    @staticmethod
    def forward(ctx, engine: AbstractEngine, u: Tensor) -> Tensor:
        lp, grad = engine.log_density_gradient(_as_engine_input(u, engine.dim))
        ctx.engine = engine
        ctx.rejected = not bool(torch.isfinite(lp).all())  # NaN gradients somewhere: see backward
        ctx.save_for_backward(u, _like(grad, u, u.shape))
        return _like(lp, u, u.shape[:-1])

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        u, grad = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True (a Hessian): the gradient must depend on u
            grad = _Gradient.apply(ctx.engine, u, grad)
        g = grad_out.unsqueeze(-1)
        if not ctx.rejected:
            return None, g * grad
        # a draw whose cotangent is 0 gets 0, even where the engine rejected it (NaN gradient), as autograd would
        return None, torch.where(g != 0, g * grad, torch.zeros_like(grad))


class _Gradient(torch.autograd.Function):
    """The engine's gradient at ``u`` (given), whose backward is a Hessian-vector product by central
    differences of the gradient (see the module docstring)."""

    @staticmethod
    def forward(ctx, engine: AbstractEngine, u: Tensor, grad: Tensor) -> Tensor:
        ctx.engine = engine
        ctx.save_for_backward(u)
        return grad.clone()

    @staticmethod
    def backward(ctx, v: Tensor):
        (u,) = ctx.saved_tensors
        hv = hessian_vector_product(ctx.engine, u, v)
        if torch.is_grad_enabled():  # differentiable on request, but a third derivative would be wrong: raise then
            hv = _ThirdOrder.apply(hv, u, v)
        return None, hv, None


class _ThirdOrder(torch.autograd.Function):
    """Passes a Hessian-vector product through; differentiating it (a third derivative) raises."""

    @staticmethod
    def forward(ctx, hv: Tensor, *inputs: Tensor) -> Tensor:  # inputs: what hv depends on (so it has a graph)
        return hv.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        raise RuntimeError(
            "third derivative of a foreign model's log density: not supported (gradients and Hessian-vector "
            "products are)"
        )


def hessian_vector_product(engine: AbstractEngine, u: Tensor, v: Tensor) -> Tensor:
    r""":math:`\nabla^2 \log p_U(u_s)\, v_s` for every draw ``s`` of ``u``, ``v`` ``(*S, D)``: central differences
    of the engine's gradient, the 2S points in one call."""
    D = engine.dim
    x, w = _as_engine_input(u, D), _as_engine_input(v, D)
    norm = w.norm(dim=-1, keepdim=True)
    h = _FD_EPS * x.norm(dim=-1, keepdim=True).clamp_min(1.0) / norm.clamp_min(1e-300)
    _, g = engine.log_density_gradient(torch.cat([x + h * w, x - h * w]).contiguous())
    S = x.shape[0]
    hv = torch.where(norm > 0, (g[:S] - g[S:]) / (2 * h), torch.zeros_like(x))
    return hv.to(u).reshape(u.shape)


class ForeignModel(Model):
    """A :class:`~varinf.models.Model` whose log density, gradient and transforms come from ``engine``
    (an :class:`AbstractEngine`; see the module docstring).

    Latents are the engine's parameters, constrained and named as the engine names them; derived and
    generated quantities come with every draw (``derived_quantities``), in summaries, the ArviZ export
    (with the engine's dims and coords) and predictions. Computations run in float64 (the model carries a
    float64 buffer, so fits default to it; ``model.float()`` makes q float32 while the engine stays float64).

    ``log_joint(**z)`` evaluates :math:`\\log p(x, z)` at constrained values without a gradient (the engine
    differentiates in its own unconstrained space only).
    """

    def __init__(self, engine: AbstractEngine, name: str | None = None):
        name = name or engine.name
        params = [v for v in engine.parameters if v.size > 0]
        if engine.dim == 0 or not params:
            raise ModelError(f"{name}: the model has no parameters, so there is no posterior to fit")
        latents = []
        for v in params:
            try:
                latents.append(Latent(v.name, v.shape))
            except ValueError as e:
                raise ModelError(f"{name}: {e}; rename it to use the model with varinf") from None
        dims = {v.name: v.dims for v in engine.variables if v.dims}
        super().__init__(latents, log_joint=self._constrained_log_joint, name=name, vectorized=True, dims=dims,
                         coords=engine.coords)  # fmt: skip
        self.engine = engine
        self.dim = int(engine.dim)
        self.variables = tuple(engine.variables)
        self.register_buffer("_precision", torch.zeros(0, dtype=torch.float64))
        self._cache: tuple | None = None

    # ------------------------------------------------------------------ densities
    def log_density(self, u: Tensor) -> Tensor:
        """:math:`\\log p_U(u)` ``(*S,)`` for ``u`` ``(*S, D)``, differentiable (twice: see the module docstring)."""
        if u.shape[-1:] != (self.dim,):
            self._check_dim(u)
        if not (u.requires_grad and torch.is_grad_enabled()):  # no gradient wanted: the cheaper evaluation
            return _like(self.engine.log_density(_as_engine_input(u, self.dim)), u, u.shape[:-1])
        return _LogDensity.apply(self.engine, u)

    def log_density_and_score(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """Value and gradient from one engine call, no autograd (the fused Gaussian step uses it)."""
        if u.shape[-1:] != (self.dim,):
            self._check_dim(u)
        lp, grad = self.engine.log_density_gradient(_as_engine_input(u, self.dim))
        return _like(lp, u, u.shape[:-1]), _like(grad, u, u.shape)

    def _constrained_log_joint(self, **z: Tensor) -> Tensor:
        u = self.unconstrain(z)
        S = u.shape[:-1]
        return self.engine.log_density(_as_engine_input(u, self.dim), jacobian=False).to(u).reshape(S)

    def _check_dim(self, u: Tensor) -> None:
        if u.shape[-1:] != (self.dim,):
            raise ModelError(f"{self.name}: expected unconstrained vectors of size {self.dim}, got {tuple(u.shape)}")

    # ------------------------------------------------------------------ transforms
    def split(self, u: Tensor) -> dict[str, Tensor]:
        raise ModelError(f"{self.name}: the engine owns the unconstrained layout; use constrain(u)")

    def constrained(self, u: Tensor) -> dict[str, Tensor]:
        """Named constrained parameters ``{name: (*S, *shape)}`` of ``u`` ``(*S, D)``. The derived and generated
        quantities of the same draws come from the same engine call and are kept for
        :meth:`derived_quantities` (random ones seeded from torch's global RNG, so ``seeded`` blocks repeat)."""
        self._check_dim(u)
        S = u.shape[:-1]
        out = self.engine.constrain(_as_engine_input(u, self.dim), derived=True, seed=_engine_seed())
        z = {lat.name: out[lat.name].to(u).reshape(*S, *lat.shape) for lat in self.latents}
        derived = {v.name: out[v.name].to(u).reshape(*S, *v.shape) for v in self.variables
                   if v.kind != "parameter" and v.name in out}  # fmt: skip
        self._cache = (list(z.values()), _identity(z), derived)  # strong references: no reused storage
        return z

    def constrain(self, u: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """Named constrained parameters and :math:`\\log|\\det J|` ``(*S,)`` (two log density evaluations per
        draw: with and without the Jacobian)."""
        z = self.constrained(u)
        x = _as_engine_input(u, self.dim)
        ladj = self.engine.log_density(x, jacobian=True) - self.engine.log_density(x, jacobian=False)
        return z, ladj.to(u).reshape(u.shape[:-1])

    def unconstrain(self, z: Mapping[str, Tensor]) -> Tensor:
        """Constrained parameter values ``{name: (*S, *shape)}`` -> ``(*S, D)`` (the engine's inverse transforms)."""
        missing = [lat.name for lat in self.latents if lat.name not in z]
        if missing:
            raise ModelError(f"{self.name}: values missing for parameter(s) {missing}")
        lat0 = self.latents[0]
        first = torch.as_tensor(z[lat0.name])
        S = first.shape[: first.dim() - len(lat0.shape)]
        flat = {}
        for lat in self.latents:
            v = torch.as_tensor(z[lat.name], dtype=torch.float64)
            if tuple(v.shape[len(S) :]) != lat.shape or tuple(v.shape[: len(S)]) != tuple(S):
                raise ModelError(f"{self.name}: {lat.name!r} has shape {tuple(v.shape)}, expected {(*S, *lat.shape)}")
            flat[lat.name] = v.detach().cpu().reshape(-1, *lat.shape)
        u = self.engine.unconstrain(flat)
        ref = self._precision
        return u.to(dtype=ref.dtype if ref.is_floating_point() else torch.float64, device=ref.device).reshape(
            *S, self.dim
        )

    # ------------------------------------------------------------------ derived quantities
    def derived_quantities(self, z: Mapping[str, Tensor], data=None) -> dict[str, Tensor]:
        """Derived and generated quantities ``{name: (*S, *shape)}`` of the draws ``z`` (the ones computed with
        ``z`` by :meth:`constrained` when ``z`` holds its tensors, else recomputed from ``z``)."""
        if data is not None:
            raise ModelError(f"{self.name}: derived quantities on other data: use result.predict(data=...)")
        if self._cache is not None and self._cache[1] == _identity(z):
            return dict(self._cache[2])
        ref = torch.as_tensor(z[self.latents[0].name])
        self.constrained(self.unconstrain(z).to(ref.dtype))
        derived = self._cache[2]
        self._cache = (list(z.values()), _identity(z), derived)
        return dict(derived)

    def predictive(self, u: Tensor, data=None) -> tuple[dict, dict, dict, Tensor | None]:
        """For draws ``u`` ``(S, D)``: ``(parameters, derived, generated, log_lik)`` evaluated by the engine on
        ``data`` (default: the model's own; other data need the same parameter shapes). ``log_lik`` ``(S, n)``
        is the generated quantity named ``log_lik`` (the Stan convention for LOO), flattened, else None."""
        engine = self.engine if data is None else self._engine_for(data)
        S = u.shape[0]
        out = engine.constrain(_as_engine_input(u, self.dim), derived=True, seed=_engine_seed())
        kinds = {v.name: v.kind for v in engine.variables}
        z = {lat.name: out[lat.name].to(u) for lat in self.latents}
        derived = {k: v.to(u) for k, v in out.items() if kinds.get(k) == "derived"}
        generated = {k: v.to(u) for k, v in out.items() if kinds.get(k) == "generated"}
        ll = generated.get(LOG_LIK)
        return z, derived, generated, ll.reshape(S, -1) if ll is not None else None

    def _engine_for(self, data) -> AbstractEngine:
        try:
            engine = self.engine.with_data(data)
        except NotImplementedError as e:
            raise ModelError(f"{self.name}: {e}") from None
        before = {v.name: v.shape for v in self.engine.parameters}
        after = {v.name: v.shape for v in engine.parameters}
        if engine.dim != self.dim or before != after:
            changed = ", ".join(f"{k} {before.get(k)} -> {after.get(k)}" for k in sorted(set(before) | set(after))
                                if before.get(k) != after.get(k))  # fmt: skip
            raise ModelError(
                f"{self.name}: the new data change the parameters ({changed or 'unconstrained size'}); predictions "
                "need the parameters that were fitted"
            )
        return engine

    # ------------------------------------------------------------------ checks
    def finite_start(self, u0: Tensor, tries: int = 100) -> Tensor:
        """``u0`` ``(D,)`` where the log density and its gradient are finite there, else the first of ``tries``
        U(-2, 2) points (a fixed generator) where they are: Stan's rule for initial values, for programs that
        reject zero (an ODE solution a rounding error below its lower bound). Else ``u0`` (``check`` explains)."""
        x = _as_engine_input(u0, self.dim)
        lp, grad = self.engine.log_density_gradient(x)
        if bool(torch.isfinite(lp).all() and torch.isfinite(grad).all()):
            return u0
        g = torch.Generator().manual_seed(0)
        cand = (torch.rand(tries, self.dim, generator=g, dtype=torch.float64) * 4 - 2).contiguous()
        lp, grad = self.engine.log_density_gradient(cand)
        ok = (torch.isfinite(lp) & torch.isfinite(grad).all(-1)).nonzero()
        return cand[int(ok[0, 0])].to(u0) if len(ok) else u0

    def check(self, u: Tensor | None = None) -> None:
        """Evaluate the log density and gradient at ``u`` (default: zeros and one U(-1, 1) point) and raise a
        one-line :class:`ModelError` with the engine's own message where either is not finite."""
        if u is None:
            g = torch.Generator().manual_seed(0)
            u = torch.stack([torch.zeros(self.dim), torch.rand(self.dim, generator=g) * 2 - 1]).double()
        x = _as_engine_input(u, self.dim)
        lp, grad = self.engine.log_density_gradient(x)
        bad = ~(torch.isfinite(lp) & torch.isfinite(grad).all(-1))
        if not bool(bad.any()):
            return
        i = int(bad.nonzero()[0, 0])
        what = f"log density is {lp[i].item()}" if not torch.isfinite(lp[i]) else "gradient is not finite"
        why = self.engine.explain(x[i])
        where = "at zero" if not bool(x[i].any()) else f"at an initial point (unconstrained {_short(x[i])})"
        raise ModelError(f"{self.name}: {what} {where}" + (f": {why}" if why else ""))


def _identity(z: Mapping[str, Tensor]) -> tuple:
    """What identifies draws without comparing values: storage, layout and in-place version of each tensor."""
    return tuple(
        (k, v.data_ptr(), tuple(v.shape), v.stride(), v.dtype, v._version) if isinstance(v, Tensor) else (k, id(v))
        for k, v in z.items()
    )


def _engine_seed() -> int:
    """A seed for the engine's own RNG, drawn from torch's global RNG (``varinf.utils.seeded`` blocks repeat)."""
    return int(torch.randint(0, 2**31 - 1, ()).item())


def _short(v: Tensor) -> str:
    flat = v.flatten().tolist()
    return "[" + ", ".join(f"{x:.3g}" for x in flat[:4]) + (", ...]" if len(flat) > 4 else "]")
