r"""``polish``: a short ADVI run from a good start, with a Gaussian control variate, stopped when q no longer
moves relative to its own noise.

``method="auto"`` hands a family that is already close to its optimum (started from a Gaussian fit
:math:`G = N(\mu_G, \Sigma_G)` of the same posterior, in coordinates whitened by it) to this loop. The ELBO is
split as

.. math::
    \mathcal L(q) = E_q[\log p(z) - \log G(z)] + E_q[\log G(z)] + H[q],

the first term estimated from ``num_particles`` reparameterized draws (one batched call), the other two in
closed form for a Gaussian q. The Monte Carlo part then only carries the target's departure from :math:`G`:
for a Gaussian posterior the gradient has no noise at all, and for nearly Gaussian ones very little (the
quadratic control variate of Miller et al. 2017, arXiv:1705.07880). Without ``gaussian`` (or for a q whose
moments are not in closed form, e.g. a flow) it is the plain sticking-the-landing ELBO (Roeder et al. 2017,
arXiv:1703.09194). Adam, no step-size trials; :class:`~varinf.optim.stationarity.ParameterStationarity`
watches q's means and sds and the run returns the average of the stationary window's parameters.

Cost per step: ``num_particles`` gradient evaluations (one batched call) plus one Adam update.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..families import DiagNormal
from ..objectives import ELBO
from .adam import LeanAdam
from .stationarity import ParameterStationarity

__all__ = ["polish"]


def _gaussian_cross(q, loc_g: Tensor, prec_g: Tensor) -> Tensor:
    r""":math:`E_q[\log G(z)]` up to G's normalizing constant, for a Gaussian q."""
    d = q.mean - loc_g
    if isinstance(q, DiagNormal):
        tr = (prec_g.diagonal() * q.variance).sum()
    else:
        tr = (prec_g * q.covariance_matrix).sum()
    return -0.5 * (tr + d @ prec_g @ d)


def _loss(log_p, q, num_particles: int, gaussian) -> Tensor:
    if gaussian is None:
        return ELBO(num_particles=num_particles, gradient="stl").loss(q, log_p).loss
    loc_g, prec_g = gaussian
    z = q.rsample((num_particles,))
    dz = z - loc_g
    resid = log_p(z) + 0.5 * ((dz @ prec_g) * dz).sum(-1)  # log p - log G (+ const)
    return -(resid.mean() + _gaussian_cross(q, loc_g, prec_g) + q.entropy())


def polish(log_p: Callable[[Tensor], Tensor], family: nn.Module, max_steps: int, lr: float = 0.05,
           num_particles: int = 8, tol: float = 0.05, min_window: int = 5, noise: float | None = None,
           gaussian: tuple[Tensor, Tensor] | None = None, decay: float = 0.3,
           trace: list[float] | None = None) -> tuple[int, int, str, bool]:  # fmt: skip
    """Run Adam on ``family`` until stationary; returns ``(steps, grad_evals, reason, converged)``; each step's
    bound estimate is appended to ``trace`` (nats; up to the control variate's constant) when given.

    ``gaussian = (loc_G, precision_G)`` in ``family``'s dtype enables the control variate (Gaussian q only).
    When q has stopped drifting but its average is still too noisy (``noise``, default ``tol``/2), the
    parameters move to that average and the step size shrinks by ``decay`` (as in ADVI's schedule): Adam's
    jitter scales with its step. The family's parameters are left at the average over the stationary window
    (or over the last half of the run when ``max_steps`` ends it)."""
    params = [p for p in family.parameters() if p.requires_grad]
    opt = LeanAdam(params, lr=lr)
    mon = ParameterStationarity(tol=tol, min_window=min_window, noise=noise)
    steps = skipped = 0
    while steps < max_steps:
        opt.zero_grad()
        loss = _loss(log_p, family(), num_particles, gaussian)
        steps += 1
        if not torch.isfinite(loss):
            skipped += 1
            if skipped > 20:
                break
            continue
        loss.backward()
        opt.step()
        if trace is not None:
            trace.append(-loss.item())
        with torch.no_grad():
            q = family()
            if mon.update(*params, q.mean, q.stddev):
                break
            if mon.noisy:  # restart from the average with a smaller step
                for p, a in zip(params, mon.average()):
                    p.copy_(a)
                lr *= decay
                opt = LeanAdam(params, lr=lr)
                mon = ParameterStationarity(tol=tol, min_window=min_window, noise=noise)
    if mon.ready:
        with torch.no_grad():
            for p, a in zip(params, mon.average()):
                p.copy_(a)
    reason = mon.reason if mon.stationary else f"{mon.reason or 'no finite step'} after {steps} steps"
    return steps, steps * num_particles, reason, mon.stationary
