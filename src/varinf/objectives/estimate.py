"""The named result every objective returns."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

__all__ = ["BoundEstimate"]


@dataclass
class BoundEstimate:
    """One Monte Carlo evaluation of a variational bound.

    Sign and units: ``loss = -bound`` averaged over the batch, in nats. ``loss.backward()`` gives the
    chosen gradient estimator (its *value* always equals the bound estimate, Pyro's surrogate trick).

    Attributes:
        loss: scalar to minimize.
        bound: ``(*batch,)`` detached bound estimate per observation (``()`` for posterior VI).
        log_weights: ``(S, *batch)`` detached :math:`\\log p(x,z_s) - \\log q(z_s)`, when computed.
        rate: ``(*batch,)`` detached :math:`KL(q\\,\\|\\,p(z))` estimate when a prior was given (ELBO only).
        distortion: ``(*batch,)`` detached :math:`-E_q \\log p(x\\mid z)` when a prior was given (ELBO only).
    """

    loss: Tensor
    bound: Tensor
    log_weights: Tensor | None = None
    rate: Tensor | None = None
    distortion: Tensor | None = None
