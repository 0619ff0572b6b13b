"""Every private torch API varinf uses, in one place, so that a torch upgrade that changes one fails loudly here
(``tests/utils/test_torch_private.py`` pins each one's behaviour) instead of somewhere deep in a fit.

=================================  =========================================================================
name here                          torch's private API, and why varinf uses it
=================================  =========================================================================
:func:`fused_adam_`                ``torch._fused_adam_``: Adam on every parameter in one kernel (``LeanAdam``:
                                   a posterior-VI step is a few dozen parameters, so Python bookkeeping costs
                                   more than the arithmetic)
:data:`HAVE_FUSED_ADAM`            whether this torch has that kernel
``foreach_*``                      ``torch._foreach_*``: one op over a list of tensors (Adam's fallback path,
                                   iterate averaging)
:func:`strong_wolfe`               ``torch.optim.lbfgs._strong_wolfe``: the line search of torch's L-BFGS,
                                   reused by ``optim/lbfgs.py`` without building a ``torch.optim.Optimizer``
                                   (which imports ``torch._dynamo``: 1.6 s of CPU)
:func:`set_scale_tril`,            ``MultivariateNormal._unbroadcasted_scale_tril``: a Gaussian built from its
:func:`scale_tril_of`              Cholesky factor without re-broadcasting it (``families.gaussian.TrilNormal``)
:func:`tensor_version`             ``Tensor._version``: the in-place update counter (a codec's integer tables
                                   are recomputed only after its weights change)
:func:`tree_map`                   ``torch.utils._pytree.tree_map``: reshape every output of a vmapped function
:func:`default_validate_args`      ``Distribution._validate_args``: the class-wide default, to restore it
:func:`validates`                  a distribution instance's ``_validate_args`` (for subclasses' own checks)
:func:`standard_gamma`             ``torch._standard_gamma``: Gamma(a, 1) draws from an explicit generator
=================================  =========================================================================
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution

__all__ = [
    "HAVE_FUSED_ADAM",
    "default_validate_args",
    "foreach_add_",
    "foreach_addcdiv_",
    "foreach_addcmul_",
    "foreach_div",
    "foreach_lerp_",
    "foreach_mul_",
    "foreach_sqrt",
    "fused_adam_",
    "scale_tril_of",
    "set_scale_tril",
    "standard_gamma",
    "strong_wolfe",
    "tensor_version",
    "tree_map",
    "validates",
]

HAVE_FUSED_ADAM = hasattr(torch, "_fused_adam_")
fused_adam_ = getattr(torch, "_fused_adam_", None)

foreach_add_ = torch._foreach_add_
foreach_addcdiv_ = torch._foreach_addcdiv_
foreach_addcmul_ = torch._foreach_addcmul_
foreach_div = torch._foreach_div
foreach_lerp_ = torch._foreach_lerp_
foreach_mul_ = torch._foreach_mul_
foreach_sqrt = torch._foreach_sqrt
standard_gamma = torch._standard_gamma
tree_map = torch.utils._pytree.tree_map


def strong_wolfe(obj_func, x: Tensor, t: float, d: Tensor, f: float, g: Tensor, gtd: Tensor, max_ls: int = 25):
    """torch's strong-Wolfe line search along ``d`` from ``x``: ``(f_new, g_new, t, evaluations)``;
    ``obj_func(x, t, d) -> (f, g)`` evaluates the loss at ``x + t d``."""
    from torch.optim.lbfgs import _strong_wolfe  # (torch.optim is already imported by torch; no dynamo here)

    return _strong_wolfe(obj_func, x, t, d, f, g, gtd, max_ls=max_ls)


def set_scale_tril(dist: Distribution, tril: Tensor) -> None:
    """Give a ``MultivariateNormal`` (built without its ``__init__``) its Cholesky factor."""
    dist._unbroadcasted_scale_tril = tril


def scale_tril_of(dist: Distribution) -> Tensor:
    """The Cholesky factor a ``MultivariateNormal`` holds, without the broadcast ``scale_tril`` makes."""
    return dist._unbroadcasted_scale_tril


def tensor_version(t: Tensor) -> int:
    """How many in-place updates ``t`` has seen (changes after ``optimizer.step()`` or ``copy_``)."""
    return t._version


def default_validate_args() -> bool:
    """The class-wide default of ``torch.distributions`` argument validation."""
    return Distribution._validate_args


def validates(dist: Distribution) -> bool:
    """Whether this distribution instance validates its arguments and values."""
    return dist._validate_args
