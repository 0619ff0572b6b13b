r"""Draw :math:`z \sim q` and evaluate :math:`\log q(z)` the way each gradient estimator needs.

=========  ==========================================================================================
gradient   what flows back
=========  ==========================================================================================
reparam    :math:`z = g_\phi(\epsilon)`; :math:`\log q_\phi(z)` differentiated in both :math:`z` and :math:`\phi`.
stl        "sticking the landing" (Roeder et al. 2017, arXiv:1703.09194): the score term
           :math:`\partial_\phi \log q_\phi(z)|_{z}` is removed, computed as
           :math:`\log q(z) - \log q(\bar z) + \overline{\log q(\bar z)}` (bar = detached): same value,
           gradient only through :math:`z`. Works for any Distribution, flows included.
dreg       as ``stl``; the IWAE weighting is applied by a gradient hook (see :mod:`.bounds`).
score      :math:`z` detached (``sample``), :math:`\log q_\phi(z)` differentiated in :math:`\phi` only.
=========  ==========================================================================================
"""

from __future__ import annotations

from torch import Tensor
from torch.distributions import Distribution

__all__ = ["GRADIENTS", "draw"]

GRADIENTS = ("reparam", "stl", "dreg", "score")


def draw(q: Distribution, n: int, gradient: str, need_log_q: bool = True) -> tuple[Tensor, Tensor | None]:
    """Return ``(z, log_q)`` with ``z`` of shape ``(n, *q.batch_shape, *q.event_shape)``."""
    if gradient == "score":
        z = q.sample((n,))
        return z, (q.log_prob(z) if need_log_q else None)
    if not q.has_rsample:
        raise ValueError(
            f"{type(q).__name__} has no reparameterized sampler; use gradient='score' "
            "(score-function / REINFORCE estimator)"
        )
    if gradient == "reparam":
        if need_log_q and hasattr(q, "rsample_and_log_prob"):  # zuko flows: one pass, no inverse
            return q.rsample_and_log_prob((n,))
        z = q.rsample((n,))
        return z, (q.log_prob(z) if need_log_q else None)
    if gradient in ("stl", "dreg"):
        z = q.rsample((n,))
        zd = z.detach()
        lq_fixed = q.log_prob(zd)
        lq = q.log_prob(z) - lq_fixed + lq_fixed.detach()  # value log q(z), gradient through z only
        return z, lq
    raise ValueError(f"unknown gradient estimator {gradient!r}; choose from {GRADIENTS}")
