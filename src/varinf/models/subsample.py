r"""Log densities of many draws from a subsample of the rows, with a second-order control variate and a
stated error (difference estimator: Quiroz, Kohn, Villani & Tran 2019, arXiv:1404.4178; for LOO on
large data, Magnusson et al. 2019, arXiv:1904.10679).

Evaluating :math:`\log p(x, z_s)` exactly for ``S`` draws costs ``S × N`` likelihood terms (4000 × 1M:
~30 s on one core). Around an anchor :math:`\hat u` (q's mean), with :math:`\delta = u - \hat u`,
:math:`\ell_i(u) = \log p(x_i \mid T(u))` and the full-data sums :math:`L, G, H` (value, gradient, Hessian
of :math:`\sum_i \ell_i` at :math:`\hat u`; one chunked pass):

.. math::

    \hat L(u) = L + G^\top\delta + \tfrac12\delta^\top H\delta
        + \tfrac{N}{m}\sum_{g=1}^{K} R_g(u),\qquad
    R_g(u) = \sum_{i\in g}\ell_i(u) - \big[L_g + G_g^\top\delta + \tfrac12\delta^\top H_g\delta\big],

over ``m`` uniformly drawn rows split into ``K`` groups, each with its own Taylor sums. The estimate is
unbiased; the residuals are third order in :math:`\delta` (a posterior sd is :math:`O(N^{-1/2})`), so its
standard error, :math:`\tfrac Nm\sqrt{K\,\widehat{\mathrm{Var}}_g(R_g)}\sqrt{1 - m/N}` per draw, is small:
0.002 nats at q's mean for logistic regression with 1M rows and m = 20,000. Cost: ``S × m`` terms,
plus ``D + 1`` passes over the data once. Needs :math:`D \le` ``MAX_DIM`` (a ``D × D`` Hessian).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..distributed import all_reduce_sum
from .chunking import rows_per_chunk

__all__ = ["EXACT_ROWS", "MAX_DIM", "SUBSAMPLE_ROWS", "EstimatedModel", "SubsampledLogDensity", "for_draws",
           "is_estimated"]  # fmt: skip

EXACT_ROWS = 50_000  # at most this many rows: evaluate exactly
SUBSAMPLE_ROWS = 20_000
MAX_DIM = 1000
GROUPS = 10


class SubsampledLogDensity:
    """``u (*S, D) -> (*S,)`` float64 estimate of ``model.log_density(u)`` (no gradient); ``last_se`` holds the
    standard error of each draw of the last call, ``max_se`` the largest so far (nats)."""

    def __init__(self, model, anchor: Tensor, rows: int = SUBSAMPLE_ROWS, groups: int = GROUPS, seed: int = 0):
        self.model, self.N, self.m = model, model.num_rows, min(int(rows), model.num_rows)
        plate = model.plate
        # float64 where the model's likelihood allows it: float32 sums over millions of rows are off by
        # ~1e-7 of their size (about a nat at 10M rows), and the residuals are differences of such sums
        self.precise = _float64_works(model)
        self.anchor = anchor.detach().reshape(-1).to(torch.float64 if self.precise else anchor.dtype)
        g = torch.Generator().manual_seed(seed)
        index = torch.randperm(self.N, generator=g)[: self.m]
        self.groups = [t.sort().values for t in index.tensor_split(groups)]  # global indices of each group
        self.local = [self._cast(plate.rows(plate.local(t).to(self.anchor.device))) for t in self.groups]
        # full-data Taylor sums, then each group's; each summed over processes in one collective
        self.L, self.G, self.H = self._taylor([plate.data], full=True)
        stats = [self._taylor([rows]) for rows in self.local]
        self.Lg = torch.stack([s[0] for s in stats])  # (K,)
        self.Gg = torch.stack([s[1] for s in stats])  # (K, D)
        self.Hg = torch.stack([s[2] for s in stats])  # (K, D, D)
        self.fpc = math.sqrt(max(1.0 - self.m / self.N, 0.0))
        self.last_se, self.max_se = None, 0.0

    def _taylor(self, blocks, full: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        model, a = self.model, self.anchor
        D = a.numel()

        def total(x, rows):
            z, _ = model.constrain(x[None])
            return model.likelihood_sum(z, rows, across_processes=False)[0]

        L = a.new_zeros((), dtype=torch.float64)
        G = a.new_zeros(D, dtype=torch.float64)
        H = a.new_zeros(D, D, dtype=torch.float64)
        for rows in blocks:
            n = int(next(iter(rows.values())).shape[0])
            per = rows_per_chunk(D, a.element_size(), model.max_memory, grad=True) if full else n
            for i in range(0, n, max(per, 1)):
                part = self._cast({k: v[i : i + per] for k, v in rows.items()})
                x = a.clone().requires_grad_(True)
                with torch.enable_grad():
                    v = total(x, part)
                    (g,) = torch.autograd.grad(v, x)
                h = torch.func.jacrev(torch.func.jacrev(lambda y, p=part: total(y, p)))(a)  # no forward mode
                L, G, H = L + v.detach().double(), G + g.double(), H + h.double()
        flat = all_reduce_sum(torch.cat([L.reshape(1), G, H.reshape(-1)]), model.plate.world)
        return flat[0], flat[1 : D + 1], flat[D + 1 :].reshape(D, D)

    def _cast(self, rows: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self.precise:
            return rows
        return {k: v.double() if v.is_floating_point() else v for k, v in rows.items()}

    @torch.no_grad()
    def __call__(self, u: Tensor) -> Tensor:
        model = self.model
        S = u.shape[:-1]
        flat = u.reshape(-1, u.shape[-1])
        z, ladj = model.constrain(flat)
        if self.precise:
            z_lik, _ = model.constrain(flat.double())
        else:
            z_lik = z
        d = (flat.to(self.anchor.dtype) - self.anchor).double()
        quad = lambda H: 0.5 * ((d @ H) * d).sum(-1)
        taylor = self.L + d @ self.G + quad(self.H)
        R = torch.stack(
            [
                model.likelihood_sum(z_lik, rows, across_processes=False).double()
                - (self.Lg[k] + d @ self.Gg[k] + quad(self.Hg[k]))
                for k, rows in enumerate(self.local)
            ],
            -1,
        )  # (S, K): this process's part of each group
        all_reduce_sum(R, model.plate.world)
        K = R.shape[-1]
        scale = self.N / self.m
        estimate = taylor + scale * R.sum(-1)
        se = scale * (K * R.var(-1)).sqrt() * self.fpc
        self.last_se = se.reshape(S)
        self.max_se = max(self.max_se, float(se.max())) if se.numel() else self.max_se
        out = model.log_prior(**z).double() + ladj.double() + estimate
        return out.reshape(S)  # float64: at a million rows |log p| ~ 1e6, where float32's spacing is 0.06 nats


def _float64_works(model) -> bool:
    """Whether the model's likelihood runs on float64 latents and rows (it may hold float32 buffers of its own)."""
    try:
        with torch.no_grad():
            rows = {k: v[:2].double() if v.is_floating_point() else v[:2] for k, v in model.plate.data.items()}
            z, _ = model.constrain(torch.zeros(1, model.dim, dtype=torch.float64))
            out = model.log_likelihood(rows, **z)
        return out.dtype == torch.float64
    except (RuntimeError, TypeError):
        return False


class EstimatedModel:
    """A model whose ``log_density`` is a :class:`SubsampledLogDensity` (no gradient); everything else is the
    model's own. What :func:`for_draws` hands to code that evaluates thousands of draws (diagnostics)."""

    def __init__(self, model, estimator: SubsampledLogDensity):
        self.model, self.estimator = model, estimator

    def log_density(self, u: Tensor) -> Tensor:
        return self.estimator(u)

    def __getattr__(self, name):
        return getattr(self.model, name)

    def describe(self) -> str:
        e = self.estimator
        return (
            f"log p(x, z) of each draw estimated from {e.m:,} of {e.N:,} rows (second-order control variate at "
            f"q's mean, {len(e.groups)} groups); largest standard error {e.max_se:.3g} nats"
        )


def is_estimated(model, rows: int = SUBSAMPLE_ROWS) -> bool:
    """Whether :func:`for_draws` estimates ``model``'s log density from a subsample: a model with more than
    ``EXACT_ROWS`` data rows and at most ``MAX_DIM`` unconstrained dimensions."""
    return getattr(model, "has_plate", False) and model.num_rows > max(EXACT_ROWS, rows) and model.dim <= MAX_DIM


def for_draws(model, anchor: Tensor | None, rows: int = SUBSAMPLE_ROWS):
    """``model`` itself when its log density is cheap enough to evaluate exactly for thousands of draws
    (no data, at most ``EXACT_ROWS`` rows, or more than ``MAX_DIM`` unconstrained dimensions), else an
    :class:`EstimatedModel` around ``anchor`` (q's mean in unconstrained space)."""
    if anchor is None or not is_estimated(model, rows):
        return model
    return EstimatedModel(model, SubsampledLogDensity(model, anchor, rows))
