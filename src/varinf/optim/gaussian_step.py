r"""The fused Gaussian step: ELBO gradients for Gaussian families in closed form around one batched score.

For :math:`z = s + A(\mu + L\epsilon)` (``MeanField``: :math:`L = \mathrm{diag}\,e^{\ell}`; ``FullRank``:
:math:`L` lower triangular with :math:`L_{ii} = e^{\ell_i}`; an optional ``Preconditioned`` :math:`s, A`), the
reparameterization gradient of :math:`\mathcal L = E[\log p(z)] + H[q]` needs only the model's score
:math:`g = \nabla_z \log p(z)` at the draws:

.. math::
    \nabla_\mu \mathcal L = E[A^\top g],\qquad
    \nabla_L \mathcal L = \mathrm{tril}\,E[(A^\top g)\,\epsilon^\top] + \mathrm{diag}(1/L_{ii}),

and with ``gradient="stl"`` (sticking the landing, Roeder et al. 2017) :math:`A^\top g` is replaced by
:math:`A^\top g - \nabla_w \log q_w(w)` and the entropy's own gradient is dropped. So autograd runs through
the model only: no Distribution objects, no graph through the family, no ELBO assembly — about half the
tensor operations of the generic :func:`~varinf.optim.step.step` per step (counted with ``torch.profiler`` in
``benchmarks/posterior_speed.py``). :func:`fused_step` returns ``None`` when it does not apply (other families,
objectives, a prior or a context), and ``step`` falls back to the generic path. Same values, same gradients
(tested against autograd), same seeded draws.

When ``log_p`` is ``model.log_density`` of a model whose score is known in closed form
(:meth:`~varinf.models.Model.log_density_and_score`, e.g. ``LogisticRegression``) no autograd runs at all: one
mean-field step on logistic regression 10k x 20 is 23 top-level ATen calls (45 in all) instead of 49 (103).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..families import FullRank, MeanField, Preconditioned
from ..objectives import ELBO
from .stationarity import closed_form
from .step import StepInfo

__all__ = ["fused_step"]

_HALF_LOG_2PI_E = 0.5 * (1.0 + math.log(2 * math.pi))
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _applies(family: nn.Module, objective) -> bool:
    if type(objective) is not ELBO or objective.beta != 1.0:
        return False
    if objective.gradient not in ("reparam", "stl") or (objective.gradient == "reparam" and not objective.analytic):
        return False
    base = family.base if type(family) is Preconditioned else family
    # (``_parameters``: the family's own, as ``parameters()`` lists them, without the generator's overhead)
    return type(base) in (MeanField, FullRank) and all(p.requires_grad for p in base._parameters.values())


_ONES: dict = {}


def _one(like: Tensor) -> Tensor:
    """A cached 0-dim 1 of ``like``'s dtype and device (a Python 1.0 in an op costs a tensor conversion)."""
    key = (like.dtype, like.device)
    one = _ONES.get(key)
    if one is None:
        one = _ONES[key] = torch.ones((), dtype=like.dtype, device=like.device)
    return one


def fused_step(log_p, family: nn.Module, objective, optimizer) -> StepInfo | None:
    """One ADVI step for a Gaussian family by the closed-form gradient (see the module docstring), or ``None``.

    With ``log_p = model.log_density`` of a model that has its score in closed form
    (:meth:`~varinf.models.Model.log_density_and_score`) no autograd runs at all. A single mean-field draw
    works on ``(D,)`` vectors (the same random numbers as ``(1, D)``), saving the reductions over draws.
    """
    if not _applies(family, objective):
        return None
    pre = family if type(family) is Preconditioned else None
    base = pre.base if pre is not None else family
    S, stl = objective.num_particles, objective.gradient == "stl"
    full = type(base) is FullRank
    single = S == 1 and not full  # one mean-field draw: vectors (D,), no reductions over draws
    with torch.no_grad():
        loc = base.loc
        D = loc.shape[0]
        log_diag = base.log_diag if full else base.log_scale
        eps = torch.randn((D,) if single else (S, D), dtype=loc.dtype, device=loc.device)
        if full:
            L = torch.tril(base.off_diag, -1) + torch.diag_embed(log_diag.exp())
            w = torch.addmm(loc, eps, L.T)
        else:
            sigma = log_diag.exp()
            es = eps * sigma
            w = loc + es
        if pre is None:
            z = w
        elif pre.diagonal:
            z = torch.addcmul(pre.shift, pre.scale, w)
        else:
            z = torch.addmv(pre.shift, pre.scale, w) if single else torch.addmm(pre.shift, w, pre.scale.T)
    closed = closed_form(log_p)
    value_and_score = closed(z) if closed is not None else None
    if value_and_score is None:
        x = z.requires_grad_(True)
        with torch.enable_grad():
            lp = log_p(x)
            (g,) = torch.autograd.grad(lp.sum(), x)
    else:
        lp, g = value_and_score
    with torch.no_grad():
        # the bound's value in Python floats: a float in a tensor op costs a scalar-tensor conversion each
        log_det = log_diag.sum().item() + (pre.log_scale_sum if pre is not None else 0.0)
        if stl:
            mc = (lp + 0.5 * eps.square().sum(-1)).mean().item() + log_det + D * _HALF_LOG_2PI
        else:
            mc = (lp.item() if single else lp.mean().item()) + log_det + D * _HALF_LOG_2PI_E
        if not math.isfinite(mc):
            bound = torch.scalar_tensor(mc, dtype=torch.float64)
            return StepInfo(loss=-bound, bound=bound, finite=False)
        gw = g if pre is None else (g * pre.scale if pre.diagonal else g @ pre.scale)
        if stl:  # minus grad_w log q_w(w) = L^-T eps
            gw = gw + (torch.linalg.solve_triangular(L.T, eps.T, upper=True).T if full else eps / sigma)
        # gradients of the loss (= -bound), which the optimizer minimizes
        optimizer.zero_grad(set_to_none=True)
        if single:
            loc.grad = gw.neg()
            # d(-bound)/d log sigma = -gw * eps * sigma, minus the entropy's 1 unless STL
            log_diag.grad = torch.mul(gw, es).neg_() if stl else torch.addcmul(_one(es), gw, es).neg_()
        else:
            loc.grad = gw.mean(0).neg()
            if full:
                G = gw.T @ eps
                base.off_diag.grad = torch.tril(G, -1).div_(-S)
                d = G.diagonal().mul(log_diag.exp()).div_(-S)
            else:
                d = (gw * eps).mean(0).mul_(sigma).neg_()
            log_diag.grad = d if stl else d.sub_(1.0)
    optimizer.step()
    return StepInfo(
        loss=torch.scalar_tensor(-mc, dtype=torch.float64),
        bound=torch.scalar_tensor(mc, dtype=torch.float64),
        finite=True,
    )
