r"""The ELBO with a Gaussian control variate: :math:`\mathcal L(q) = E_q[\log p(z) - \log G(z)] + E_q[\log G(z)] + H[q]`.

For a Gaussian fit :math:`G = N(\mu_G, \Sigma_G)` of the same posterior (``loc``, ``precision`` =
:math:`\Sigma_G^{-1}`), the first term is estimated from ``num_particles`` reparameterized draws (one batched
call) and the other two in closed form for a Gaussian q. The Monte Carlo part then only carries the target's
departure from :math:`G`: for a Gaussian posterior the gradient has no noise at all, for nearly Gaussian ones
very little (the quadratic control variate of Miller et al. 2017, arXiv:1705.07880). ``method="auto"`` polishes
mean-field and low-rank families with it, started from the Gaussian fit and whitened by it.

Values are up to :math:`G`'s normalizing constant (a constant in q), so the bound is not an ELBO in value; its
gradient is the ELBO's. q must be Gaussian (a ``DiagNormal`` or any distribution with ``covariance_matrix``).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor
from torch.distributions import Distribution

from ..families import DiagNormal
from .estimate import BoundEstimate

__all__ = ["ControlVariateELBO"]


@dataclass(frozen=True, eq=False)
class ControlVariateELBO:
    """ELBO of a Gaussian q with the quadratic control variate of a Gaussian ``N(loc, precision^-1)`` (module
    docstring); ``loc`` ``(D,)`` and ``precision`` ``(D, D)`` in q's dtype."""

    loc: Tensor
    precision: Tensor
    num_particles: int = 8

    def cross_entropy_term(self, q: Distribution) -> Tensor:
        r""":math:`E_q[\log G(z)]` up to G's normalizing constant."""
        d = q.mean - self.loc
        if isinstance(q, DiagNormal):
            tr = (self.precision.diagonal() * q.variance).sum()
        else:
            tr = (self.precision * q.covariance_matrix).sum()
        return -0.5 * (tr + d @ self.precision @ d)

    def loss(self, q: Distribution, log_p, prior: Distribution | None = None) -> BoundEstimate:
        if prior is not None:
            raise ValueError("ControlVariateELBO is for posterior VI (no prior term)")
        z = q.rsample((self.num_particles,))
        dz = z - self.loc
        resid = log_p(z) + 0.5 * ((dz @ self.precision) * dz).sum(-1)  # log p - log G (+ const)
        loss = -(resid.mean() + self.cross_entropy_term(q) + q.entropy())
        return BoundEstimate(loss=loss, bound=(-loss).detach())
