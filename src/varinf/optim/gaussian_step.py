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
tensor operations of the generic :func:`~varinf.optim.gradient_step.step` per step (counted with ``torch.profiler`` in
``benchmarks/posterior_speed.py``). :func:`fused_step` returns ``None`` when it does not apply (other families,
objectives, a prior or a context), and ADVI takes the generic step (:mod:`.gradient_step`). Same values, same gradients
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
from .gradient_step import StepInfo
from .stationarity import closed_form

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
    d = _draw(family, objective.num_particles)
    closed = closed_form(log_p)
    value_and_score = closed(d.z) if closed is not None else None
    if value_and_score is None:
        x = d.z.requires_grad_(True)
        with torch.enable_grad():
            lp = log_p(x)
            (g,) = torch.autograd.grad(lp.sum(), x)
    else:
        lp, g = value_and_score
    stl = objective.gradient == "stl"
    with torch.no_grad():
        mc = _bound(d, lp, stl)
        if not math.isfinite(mc):
            bound = torch.scalar_tensor(mc, dtype=torch.float64)
            return StepInfo(loss=-bound, bound=bound, finite=False)
        optimizer.zero_grad(set_to_none=True)
        _set_gradients(d, g, stl)
    optimizer.step()
    return StepInfo(
        loss=torch.scalar_tensor(-mc, dtype=torch.float64),
        bound=torch.scalar_tensor(mc, dtype=torch.float64),
        finite=True,
    )


class _Draws:
    """The reparameterized draws of one step: ``z = shift + A w``, ``w = loc + L eps`` (module docstring)."""

    __slots__ = ("L", "S", "base", "eps", "es", "full", "log_diag", "pre", "sigma", "single", "z")


@torch.no_grad()
def _draw(family: nn.Module, S: int) -> _Draws:
    d = _Draws()
    d.pre = family if type(family) is Preconditioned else None
    d.base = d.pre.base if d.pre is not None else family
    d.S, d.full = S, type(d.base) is FullRank
    d.single = S == 1 and not d.full  # one mean-field draw: vectors (D,), no reductions over draws
    loc = d.base.loc
    D = loc.shape[0]
    d.log_diag = d.base.log_diag if d.full else d.base.log_scale
    d.eps = torch.randn((D,) if d.single else (S, D), dtype=loc.dtype, device=loc.device)
    if d.full:
        d.L = torch.tril(d.base.off_diag, -1) + torch.diag_embed(d.log_diag.exp())
        w = torch.addmm(loc, d.eps, d.L.T)
    else:
        d.sigma = d.log_diag.exp()
        d.es = d.eps * d.sigma
        w = loc + d.es
    pre = d.pre
    if pre is None:
        d.z = w
    elif pre.diagonal:
        d.z = torch.addcmul(pre.shift, pre.scale, w)
    else:
        d.z = torch.addmv(pre.shift, pre.scale, w) if d.single else torch.addmm(pre.shift, w, pre.scale.T)
    return d


def _bound(d: _Draws, lp: Tensor, stl: bool) -> float:
    """The bound's value in Python floats: a float in a tensor op costs a scalar-tensor conversion each."""
    D = d.base.loc.shape[0]
    log_det = d.log_diag.sum().item() + (d.pre.log_scale_sum if d.pre is not None else 0.0)
    if stl:
        return (lp + 0.5 * d.eps.square().sum(-1)).mean().item() + log_det + D * _HALF_LOG_2PI
    return (lp.item() if d.single else lp.mean().item()) + log_det + D * _HALF_LOG_2PI_E


def _set_gradients(d: _Draws, g: Tensor, stl: bool) -> None:
    """Gradients of the loss (= -bound), which the optimizer minimizes, from the score ``g`` at the draws."""
    pre, base, eps = d.pre, d.base, d.eps
    gw = g if pre is None else (g * pre.scale if pre.diagonal else g @ pre.scale)
    if stl:  # minus grad_w log q_w(w) = L^-T eps
        gw = gw + (torch.linalg.solve_triangular(d.L.T, eps.T, upper=True).T if d.full else eps / d.sigma)
    if d.single:
        base.loc.grad = gw.neg()
        # d(-bound)/d log sigma = -gw * eps * sigma, minus the entropy's 1 unless STL
        d.log_diag.grad = torch.mul(gw, d.es).neg_() if stl else torch.addcmul(_one(d.es), gw, d.es).neg_()
        return
    base.loc.grad = gw.mean(0).neg()
    if d.full:
        G = gw.T @ eps
        base.off_diag.grad = torch.tril(G, -1).div_(-d.S)
        grad = G.diagonal().mul(d.log_diag.exp()).div_(-d.S)
    else:
        grad = (gw * eps).mean(0).mul_(d.sigma).neg_()
    d.log_diag.grad = grad if stl else grad.sub_(1.0)
