r"""An explicit model: named latents with supports, and a log joint :math:`\log p(x, z)`.

ADVI view: with :math:`z = T(u)`, :math:`T` = ``biject_to(support)`` per latent,

.. math:: \log p_U(u) = \log p(x, T(u)) + \log|\det J_T(u)|,

which :meth:`Model.log_density` evaluates for ``u`` of shape ``(*S, D)`` (any leading sample
dimensions), returning shape ``(*S,)``. Units: nats.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.distributions import biject_to
from torch.distributions.transforms import ComposeTransform, IndependentTransform, Transform

from .errors import ModelError
from .latent import Latent

__all__ = ["Model"]


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
        ushape = tuple(t.inverse_shape(torch.Size(latent.shape)))
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


class Model(nn.Module):
    """A probabilistic model with named latents and a log joint.

    Either subclass and implement ``log_joint(self, **latents)``, or pass a function.
    The log joint receives one tensor per latent of shape ``(*S, *latent.shape)`` and must return
    ``(*S,)``: the log density summed over the data and the latent's own dimensions, broadcast over
    the leading sample dimensions ``S``. Data may be stored as buffers so ``model.to(dtype)`` moves it.

    Args:
        latents: the latent variables, in order.
        log_joint: ``f(**latents) -> Tensor`` (used when not subclassing).
        name: a label for summaries.
        vectorized: set False when ``log_joint`` handles one draw at a time; it is then mapped over the
            sample dimension with ``torch.func.vmap``.

    Example:
        >>> import torch
        >>> from torch.distributions import Normal
        >>> y = torch.tensor([0.3, -0.2, 1.1])
        >>> m = Model([Latent("mu")], lambda mu: Normal(0, 1).log_prob(mu)
        ...           + Normal(mu[..., None], 1).log_prob(y).sum(-1))
        >>> m.log_density(torch.zeros(5, 1)).shape
        torch.Size([5])
    """

    def __init__(
        self,
        latents: Sequence[Latent],
        log_joint: Callable[..., Tensor] | None = None,
        *,
        name: str | None = None,
        vectorized: bool = True,
    ):
        super().__init__()
        latents = tuple(latents)
        if not latents:
            raise ModelError("a model needs at least one latent variable")
        names = [lat.name for lat in latents]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ModelError(f"duplicate latent name(s): {sorted(dup)}")
        self.latents = latents
        self.name = name or type(self).__name__
        self._fn = log_joint
        self._vectorized = vectorized
        blocks, offset = [], 0
        for lat in latents:
            b = _make_block(lat, offset)
            blocks.append(b)
            offset += b.size
        self._blocks = tuple(blocks)
        self.dim = offset
        self._all_identity = all(b.identity for b in blocks)
        self._sizes = [b.size for b in blocks]

    # ------------------------------------------------------------------ log joint
    def log_joint(self, **z: Tensor) -> Tensor:
        """:math:`\\log p(x, z)` for named latents of shape ``(*S, *shape)``; returns ``(*S,)``."""
        if self._fn is None:
            raise NotImplementedError(f"{type(self).__name__} must implement log_joint or be given one")
        if self._vectorized:
            return self._fn(**z)
        return self._vmapped(z)

    def _vmapped(self, z: Mapping[str, Tensor]) -> Tensor:
        first = next(iter(z.values()))
        lat0 = self.latents[0]
        batch = first.shape[: first.dim() - len(lat0.shape)]
        flat = {k: v.reshape(-1, *v.shape[len(batch) :]) for k, v in z.items()}
        out = torch.func.vmap(lambda d: self._fn(**d))(flat)
        return out.reshape(batch)

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

    # ------------------------------------------------------------------ checks
    def check(self, u: Tensor | None = None) -> None:
        """Evaluate the log joint at ``u`` (default: zeros, plus a second random point) and raise a
        :class:`ModelError` naming the latent when the value is not finite or has the wrong shape."""
        p = next(self.buffers(), None)
        dtype = p.dtype if p is not None and p.is_floating_point() else torch.get_default_dtype()
        if u is None:
            g = torch.Generator().manual_seed(0)
            u = torch.stack([torch.zeros(self.dim), torch.rand(self.dim, generator=g) * 2 - 1]).to(dtype)
        u = u.detach().reshape(-1, self.dim).clone().requires_grad_(True)
        z, ladj = self.constrain(u)
        for zv in z.values():
            zv.retain_grad()
        try:
            lj = self.log_joint(**z)
        except Exception as e:  # the user's code failed: say where, keep the original traceback
            shapes = {k: tuple(v.shape) for k, v in z.items()}
            raise ModelError(
                f"{self.name}: log_joint raised {type(e).__name__}: {e}\n  called with latents of shapes "
                f"{shapes} (a leading sample dimension of {u.shape[0]} draws, then each latent's shape)"
            ) from e
        if not isinstance(lj, Tensor):
            raise ModelError(f"{self.name}: log_joint must return a torch.Tensor, got {type(lj).__name__}")
        if not lj.is_floating_point():  # int64 cannot carry a gradient; complex is not a log density
            raise ModelError(
                f"{self.name}: log_joint returned a {lj.dtype} tensor; it must be real floating point "
                f"(the latents' dtype, {u.dtype}): compute it with float operations"
                + (", and return its real part" if lj.is_complex() else "")
            )
        if lj.shape != u.shape[:-1]:
            hint = (
                " It looks like it sums over the sample dimension too: reduce only the data and latent dimensions."
                if lj.dim() == 0
                else " Sum over the data dimension(s) so each draw gives one number."
            )
            raise ModelError(
                f"{self.name}: log_joint returned shape {tuple(lj.shape)} for a batch of {u.shape[0]} draws; "
                f"expected {tuple(u.shape[:-1])}.{hint} (Or pass vectorized=False.)"
            )
        total = lj + ladj
        if torch.isfinite(total).all():
            return
        bad_row = int((~torch.isfinite(total)).nonzero()[0, 0])
        total[bad_row].backward() if total[bad_row].requires_grad and torch.isnan(total[bad_row]) else None
        culprits = []
        for b in self._blocks:
            v = z[b.latent.name]
            grad = v.grad
            if grad is not None and not torch.isfinite(grad[bad_row]).all():
                culprits.append(b.latent)
        values = {k: v[bad_row].detach() for k, v in z.items()}

        def fmt(lat):
            return f"{lat.name!r} (support {lat.support!r}, value {_short(values[lat.name])})"

        where = (
            "the gradient is not finite with respect to " + ", ".join(fmt(c) for c in culprits)
            if culprits
            else "latent values: " + ", ".join(fmt(b.latent) for b in self._blocks)
        )
        raise ModelError(
            f"{self.name}: log joint is {total[bad_row].item()} at an initial point; {where}. Check that each "
            "latent's declared support matches how the log joint uses it (e.g. a scale needs support='positive'), "
            "and that the data have no NaN."
        )

    def extra_repr(self) -> str:
        return ", ".join(f"{lat.name}{list(lat.shape)}: {lat.support!r}" for lat in self.latents)


def _short(v: Tensor) -> str:
    flat = v.flatten()
    s = ", ".join(f"{x:.3g}" for x in flat[:4].tolist())
    return f"[{s}{', ...' if flat.numel() > 4 else ''}]" if v.dim() else f"{v.item():.3g}"
