r"""Normalizing-flow family via zuko (optional dependency: ``pip install varinf[flows]``).

:math:`q(z) = \mathcal{N}(0, I)` pushed through a stack of autoregressive transforms: neural spline
flows (NSF, Durkan et al. 2019, arXiv:1906.04032) by default, or affine MAF (arXiv:1705.07057).
``zuko`` is imported only here.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import AffineTransform, Distribution, TransformedDistribution

from .base import AbstractFamily

__all__ = ["Flow", "flow_option_names"]


def _zuko():
    try:
        import zuko
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("the flow family needs zuko: pip install 'varinf[flows]'") from e
    return zuko


def flow_option_names() -> set[str]:
    """The keyword options zuko's NSF/MAF flows take beyond :class:`Flow`'s own (``bins``, ``passes``,
    ``randperm``, ``activation``, ...), read from their signatures."""
    import inspect

    zuko = _zuko()
    names: set[str] = set()
    for fn in (zuko.flows.NSF.__init__, zuko.flows.MAF.__init__, zuko.flows.MaskedAutoregressiveTransform.__init__,
               zuko.nn.MLP.__init__):  # fmt: skip
        names |= {p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}  # fmt: skip
    return names - {"self", "features", "in_features", "out_features", "context", "univariate", "shapes", "order",
                    "adjacency"}  # fmt: skip


class Flow(AbstractFamily):
    """A zuko flow over :math:`\\mathbb{R}^{dim}` (optionally conditioned on a context of size ``context``).

    Args:
        dim: number of unconstrained dimensions.
        kind: ``"nsf"`` (rational-quadratic splines) or ``"maf"`` (affine).
        transforms: number of autoregressive layers.
        hidden: hidden sizes of each layer's MADE network.
        loc: optional shift applied after the flow (e.g. the model's initial point).
        context: size of a conditioning vector (0 = unconditional).
    """

    def __init__(
        self,
        dim: int,
        kind: str = "nsf",
        transforms: int = 3,
        hidden: tuple[int, ...] = (64, 64),
        loc: Tensor | None = None,
        context: int = 0,
        **kwargs,
    ):
        super().__init__()
        zuko = _zuko()
        self.dim = int(dim)
        if self.dim < 2 and kind == "nsf":
            kind = "maf"  # autoregressive splines need >= 2 features; 1-D falls back to an affine flow
        cls = {"nsf": zuko.flows.NSF, "maf": zuko.flows.MAF}.get(kind)
        if cls is None:
            raise ValueError(f"unknown flow kind {kind!r}; use 'nsf' or 'maf'")
        self.flow = cls(features=self.dim, context=context, transforms=transforms, hidden_features=hidden, **kwargs)
        self.shifted = loc is not None
        self.register_buffer("shift", torch.zeros(self.dim) if loc is None else torch.as_tensor(loc).clone())

    def forward(self, c: Tensor | None = None) -> Distribution:
        q = self.flow(c)
        if self.shifted:
            return TransformedDistribution(q, [AffineTransform(self.shift, 1.0, event_dim=1)])
        return q
