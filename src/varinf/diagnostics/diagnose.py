r"""``diagnose``: did the variational fit work? PSIS :math:`\hat k`, ESS, log evidence, ELBO, warnings.

From ``S`` fresh draws :math:`u_s \sim q` (unconstrained space) and :math:`\log w_s = \log p_U(x, u_s) - \log q(u_s)`:

- PSIS :math:`\hat k` and the smoothed weights (:mod:`.psis`), with the verdict and its explanation;
- :math:`\log p(x)` by importance sampling with q as proposal (:mod:`.importance`), with a standard error
  only where :math:`\hat k < 0.25` says the weights' variance is finite and estimable; otherwise stated as a lower bound,
  and, under the ``"auto"`` policy and a large enough budget, replaced by bridge sampling (:mod:`.evidence`);
- the ELBO :math:`\frac1S\sum_s \log w_s` and :math:`\mathrm{KL}(q\,\|\,p(\cdot\mid x)) \approx \log\hat Z - \mathrm{ELBO}`;
- PSIS-corrected posterior expectations and draws (:meth:`Diagnostics.expectation`, :meth:`Diagnostics.resample`);
- the PSIS mean shift, in **posterior** sds: :math:`|E_{\rm PSIS}[z_i] - E_q[z_i]| / \mathrm{sd}_{\rm PSIS}(z_i)` estimates
  how far q's mean is from the posterior's. When :math:`\hat k` passes but the shift exceeds ``SHIFT_TOL``
  (half of the 0.1 sd we want to catch, so the warning fires before the error reaches 0.1) and
  ``SHIFT_Z`` times its own Monte Carlo noise, or is too noisy to rule out 0.1 (:func:`shift_suspect`), a
  second warning says q's point estimates may be biased.

Cost: ``S`` draws and one batched log-density evaluation (no gradients), small next to a fit; bridge
sampling, when the policy runs it, costs its budget in gradients (reported).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.distributions import Distribution

from ..utils import seeded
from .evidence import policy_evidence, with_subsample_error
from .evidence_result import LogEvidence
from .importance import importance_draws, log_evidence
from .psis import KHAT_GOOD, PSISResult, psis

__all__ = ["SHIFT_TOL", "SHIFT_Z", "DiagnosticWarning", "Diagnostics", "diagnose", "diagnose_q", "shift_suspect"]

# posterior sds: warn when PSIS moves a mean by more than this (and more than SHIFT_Z times its noise);
# half of the 0.1 sd error the warning must catch (calibrated on many seeds: benchmarks/evidence_calibration.py)
SHIFT_TOL = 0.05
SHIFT_Z = 2.0
WIDEN_TOL = 1.3  # PSIS sd / q sd above this: q is far too narrow somewhere (checked where PSIS estimates are shown)

_REFERENCE = "Yao et al. 2018, arXiv:1802.02538; Vehtari et al. 2024, arXiv:1507.02646"

_MEANING = {
    "good": "q is close to the posterior; estimates from q and PSIS-corrected ones are reliable",
    "ok": "q is usable but importance ratios have infinite variance; prefer PSIS-corrected estimates and check "
    "with more draws or a richer family",
    "bad": "q misses parts of the posterior; means and especially variances from q are unreliable",
    "very bad": "q misses parts of the posterior badly (ratios without a finite mean); do not use q's estimates",
    "unknown": "k-hat not computed (ArviZ is not installed: pip install 'varinf[arviz]')",
}


class DiagnosticWarning(UserWarning):
    """PSIS says the fitted q is an unreliable approximation of the posterior (or the check failed)."""


@dataclass
class Diagnostics:
    r"""What :func:`diagnose` found about a fitted q.

    Attributes:
        psis: :class:`~varinf.diagnostics.psis.PSISResult` (:math:`\hat k`, raw and smoothed log weights, ESS).
        log_evidence: importance-sampling :class:`~varinf.diagnostics.evidence_result.LogEvidence` with q as
            proposal (nats), ``reliable`` only when :math:`\hat k < 0.25`.
        elbo, elbo_se: ELBO estimate from the same draws and its standard error (nats).
        draws: ``{latent: (S, *shape)}`` constrained draws of q the weights belong to.
        unconstrained: ``(S, D)`` the same draws in unconstrained space.
        log_q: ``(S,)`` :math:`\log q(u_s)` (float64).
        num_failed: draws where the model's log density was NaN (given weight 0).
        psis_shift: largest :math:`|E_{\mathrm{PSIS}}[z_i] - E_q[z_i]| / \mathrm{sd}_{\mathrm{PSIS}}(z_i)` over the
            scalars of the constrained latents: how far PSIS moves q's means, in (estimated) posterior sds.
        psis_shift_at: the scalar where that happens, e.g. ``"beta[2]"`` (0-based).
        psis_widen, psis_widen_at: largest PSIS sd / q sd over the same scalars, and where (q too narrow).
        psis_shift_noise: Monte Carlo sd of that scalar's shift (same units).
        evidence: the best :math:`\log p(x)` estimate the policy produced (``log_evidence`` itself, or bridge
            sampling when IS was unreliable and the budget allowed; ``evidence.method`` names it).
        messages: the warnings raised (also in :meth:`summary_lines`).
    """

    psis: PSISResult
    log_evidence: LogEvidence
    elbo: float
    elbo_se: float
    draws: dict[str, Tensor]
    unconstrained: Tensor
    log_q: Tensor
    num_failed: int = 0
    psis_shift: float = math.nan
    psis_shift_at: str = ""
    psis_widen: float = math.nan
    psis_widen_at: str = ""
    psis_shift_noise: float = math.nan
    evidence: LogEvidence | None = None
    messages: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ headline numbers
    @property
    def khat(self) -> float:
        return self.psis.khat

    @property
    def ess(self) -> float:
        """PSIS effective sample size (of ``num_draws``)."""
        return self.psis.ess

    @property
    def num_draws(self) -> int:
        return self.psis.num_draws

    @property
    def verdict(self) -> str:
        """``"good"`` / ``"ok"`` / ``"bad"`` / ``"very bad"`` / ``"unknown"`` (see :mod:`.psis`)."""
        return self.psis.verdict

    @property
    def reliable(self) -> bool:
        """:math:`\\hat k` at most the sample-size threshold (``False`` when unknown)."""
        return self.verdict in ("good", "ok")

    @property
    def shift_noise(self) -> float:
        """Monte Carlo sd of :attr:`psis_shift` at the scalar where it is largest (posterior sds)."""
        return self.psis_shift_noise

    @property
    def kl(self) -> float:
        r""":math:`\mathrm{KL}(q\,\|\,p(\cdot\mid x)) \approx \log\hat Z - \mathrm{ELBO}` with the best evidence
        estimate (nats; meaningful when that estimate is reliable)."""
        return (self.evidence or self.log_evidence).estimate - self.elbo

    # ------------------------------------------------------------------ PSIS-corrected estimates
    def expectation(self, f: Callable[[dict[str, Tensor]], Tensor]) -> Tensor:
        r"""PSIS estimate of :math:`E_{p(z\mid x)}[f(z)] \approx \sum_s \tilde w_s f(z_s)`.

        ``f`` maps the constrained draws ``{latent: (S, *shape)}`` to ``(S, *out)``; returns ``(*out)`` (float64).
        """
        v = torch.as_tensor(f(self.draws)).double()
        if v.shape[:1] != (self.num_draws,):
            raise ValueError(f"f must return a leading dimension of {self.num_draws} draws, got {tuple(v.shape)}")
        w = self.psis.weights.to(v.device)
        return torch.tensordot(w, v, dims=([0], [0]))

    def mean(self) -> dict[str, Tensor]:
        """PSIS-corrected posterior mean of every latent (constrained space)."""
        return {k: self.expectation(lambda z, k=k: z[k]) for k in self.draws}

    def sd(self) -> dict[str, Tensor]:
        """PSIS-corrected posterior standard deviation of every latent."""
        out = {}
        for k, m in self.mean().items():
            m2 = self.expectation(lambda z, k=k: z[k].double() ** 2)
            out[k] = (m2 - m**2).clamp_min(0).sqrt()
        return out

    def resample(self, n: int = 1000, seed: int | None = None) -> dict[str, Tensor]:
        """``n`` draws resampled with replacement by the smoothed weights (sampling-importance-resampling):
        approximately posterior draws when :math:`\\hat k` is small. ``{latent: (n, *shape)}``; fresh randomness
        unless ``seed`` is given."""
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        idx = torch.multinomial(self.psis.weights.float(), n, replacement=True, generator=g)
        return {k: v[idx.to(v.device)] for k, v in self.draws.items()}

    # ------------------------------------------------------------------ reporting
    def summary_lines(self) -> list[str]:
        """Lines appended to ``FitResult.summary()``."""
        p = self.psis
        k = "n/a" if math.isnan(p.khat) else f"{p.khat:.2f}"
        ev = self.evidence or self.log_evidence
        lines = [
            f"PSIS k-hat = {k} over {p.num_draws} draws of q -> {self.verdict}: {_MEANING[self.verdict]}",
            f"  k-hat < {KHAT_GOOD} good; {KHAT_GOOD}-{p.threshold:.2f} ok (PSIS-corrected estimates converge); "
            f"> {p.threshold:.2f} unreliable, where {p.threshold:.2f} = min(1 - 1/log10 S, 0.7) ({_REFERENCE})",
            f"  PSIS effective sample size {p.ess:.0f} of {p.num_draws}; PSIS moves q's means by up to "
            f"{self.psis_shift:.3f} posterior sds (at {self.psis_shift_at}; Monte Carlo noise {self.shift_noise:.3f})",
            f"log evidence {ev.describe()}",
        ]
        if ev is not self.log_evidence:
            lines.append(f"  (importance sampling with q alone: {self.log_evidence.describe()})")
        elif not ev.reliable:
            lines.append(
                "  for an error bar: varinf.evidence(result, method='bridge') (about 20,000 gradient evaluations), "
                "or varinf.fit(..., evidence_budget=20000)"
            )
        lines.append(
            f"ELBO {self.elbo:.4f} ± {self.elbo_se:.4f}; KL(q||posterior) ≈ {ev.estimate - self.elbo:.3f} nats"
            + ("" if ev.reliable else " (not trustworthy: the evidence above is unreliable)")
        )
        lines += [f"WARNING: {m}" for m in self.messages]
        return lines

    def __str__(self) -> str:
        return "\n".join(self.summary_lines())

    def __repr__(self) -> str:
        ev = self.evidence or self.log_evidence
        val = f"{ev.estimate:.4f}±{ev.se:.2g}" if ev.reliable else f"{ev.estimate:.4f}(unreliable)"
        return (
            f"Diagnostics(khat={self.khat:.3g}, verdict={self.verdict!r}, ess={self.ess:.0f}, "
            f"num_draws={self.num_draws}, log_evidence[{ev.method}]={val}, elbo={self.elbo:.4f})"
        )


def shift_suspect(shift: float, noise: float) -> bool:
    """Whether a PSIS mean shift (posterior sds) with Monte Carlo sd ``noise`` says q's mean may be off by 0.1 sd:
    the shift exceeds ``SHIFT_TOL`` and ``SHIFT_Z`` noise sds, or it is real (above one noise sd) and its upper
    ``SHIFT_Z``-sd bound reaches ``2 * SHIFT_TOL`` (a noisy shift that could hide a 0.1 sd error)."""
    return (shift > SHIFT_TOL and shift > SHIFT_Z * noise) or (
        shift > noise and shift + SHIFT_Z * noise > 2 * SHIFT_TOL
    )


def _psis_shift(draws: dict[str, Tensor], weights: Tensor, label=None) -> tuple[float, str, float]:
    r"""Largest PSIS shift of q's means in posterior sds, where, and its Monte Carlo sd.

    Per scalar :math:`x`: :math:`\Delta = \sum_s (\tilde w_s - 1/S)\,x_s` (PSIS mean minus q's sample mean
    on the same draws), scaled by the PSIS sd (the posterior-sd estimate; q's sd where that is zero). Its noise
    is :math:`\sqrt{\sum_s (\tilde w_s - 1/S)^2 (x_s - \bar x_{\rm PSIS})^2}` on the same scale. Reported: the
    scalar with the largest shift among those :func:`shift_suspect` flags, else the largest shift overall.
    """
    best = (False, -math.inf, "", 0.0)  # (flagged, shift, where, noise)
    w = weights.double()
    for name, v in draws.items():
        x = v.double().reshape(v.shape[0], -1)
        wx = w.to(x.device)
        dw = (wx - 1.0 / x.shape[0])[:, None]
        mean_p = wx @ x
        sd_p = (wx @ (x - mean_p).square()).sqrt()
        sd = torch.where(sd_p > 0, sd_p, x.std(0)).clamp_min(1e-300)
        shift = ((dw * x).sum(0).abs() / sd).tolist()
        noise = (((dw * (x - mean_p)).square().sum(0)).sqrt() / sd).tolist()
        fixed = _constant(x).tolist()
        for j, (sj, nj) in enumerate(zip(shift, noise)):
            if fixed[j]:
                continue
            cand = (shift_suspect(sj, nj), sj)
            if cand > best[:2]:
                where = _where(name, v, j, label)
                best = (cand[0], sj, where, nj)
    return best[1], best[2], best[3]


def _psis_widen(draws: dict[str, Tensor], weights: Tensor, label=None) -> tuple[float, str]:
    """Largest PSIS sd / q sd over the scalars of the latents, and where: how much too narrow q is."""
    best, where = 0.0, ""
    w = weights.double()
    for name, v in draws.items():
        x = v.double().reshape(v.shape[0], -1)
        sd = x.std(0).clamp_min(1e-300)
        m = w.to(x.device) @ x
        ratio = (w.to(x.device) @ (x - m).square()).sqrt() / sd
        ratio = torch.where(_constant(x), torch.zeros_like(ratio), ratio)
        j = int(ratio.argmax())
        if ratio[j].item() > best:
            best = ratio[j].item()
            where = _where(name, v, j, label)
    return best, where


def _constant(x: Tensor) -> Tensor:
    """Scalars that do not vary over the draws ``x`` ``(S, k)`` beyond rounding (a Cholesky factor's fixed
    1 on the diagonal): no shift or widening to report there."""
    return x.std(0) <= 1e-10 * x.abs().amax(0).clamp_min(1e-300)


def _where(name: str, v: Tensor, j: int, label) -> str:
    """The name of scalar ``j`` of draws ``v`` ``(S, *shape)``: ``label(name, shape)[j]`` (the model's
    :meth:`~varinf.models.Model.element_names`) when given, else 0-based indices."""
    if v.dim() == 1:
        return name
    if label is not None:
        return label(name, tuple(v.shape[1:]))[j]
    return f"{name}[{','.join(map(str, _unravel(j, v.shape[1:])))}]"


def _unravel(j: int, shape: tuple[int, ...]) -> list[int]:
    idx = []
    for s in reversed(shape):
        idx.append(j % s)
        j //= s
    return idx[::-1]


def _messages(d: Diagnostics, family: str, corrected: bool = False) -> list[str]:
    msgs = []
    p = d.psis
    if d.verdict in ("bad", "very bad"):
        msgs.append(
            f"k-hat = {p.khat:.2f} > {p.threshold:.2f}: the {family} approximation is unreliable (VI typically "
            "underestimates posterior variance). Try a richer family (family='fullrank' or 'flow'), a "
            "reparameterization (e.g. non-centered hierarchical models), or more optimization steps."
        )
    elif corrected and d.verdict == "ok" and (
        d.psis_shift > max(2 * SHIFT_TOL, SHIFT_Z * d.shift_noise) or d.psis_widen > WIDEN_TOL
    ):
        # the fit reports PSIS-corrected estimates; between 0.5 and the threshold they converge slowly, so a large
        # correction (a mean moved, or q far too narrow somewhere) means they rest on a few heavy draws
        msgs.append(
            f"k-hat = {p.khat:.2f} (between {KHAT_GOOD} and {p.threshold:.2f}): the estimates shown are PSIS-corrected, "
            f"moving q's mean of {d.psis_shift_at} by {d.psis_shift:.2f} posterior sds and widening its sd of "
            f"{d.psis_widen_at} "
            f"{d.psis_widen:.2f}-fold, from an effective sample size of {d.ess:.0f}: at this k-hat they converge "
            "slowly. Check with more draws (diagnose_draws) or a richer family."
        )
    elif d.verdict in ("good", "ok") and not corrected and shift_suspect(d.psis_shift, d.shift_noise):
        # k-hat says PSIS is trustworthy, and PSIS disagrees with q: q's own point estimates are biased
        msgs.append(
            f"k-hat = {p.khat:.2f} is acceptable, but PSIS moves q's mean of {d.psis_shift_at} by {d.psis_shift:.2f} "
            f"± {d.shift_noise:.2f} posterior sds: q's means may be off by about that much (an early stop, too large a step size, or the "
            "family's own bias). Use the PSIS-corrected estimates (diagnostics.mean(), .resample()), fit longer or "
            "use a richer family."
        )
    elif d.verdict == "unknown":
        msgs.append("PSIS k-hat not computed: install ArviZ (pip install 'varinf[arviz]') to check the fit")
    if d.num_failed:
        msgs.append(
            f"the model's log density was NaN at {d.num_failed} of {p.num_draws} draws of q (given weight 0); "
            "the estimates above are biased; check the model's numerics where q puts mass"
        )
    return msgs


@torch.no_grad()
def diagnose_q(
    model,
    q: Distribution,
    num_draws: int = 4000,
    seed: int | None = 0,
    warn: bool = True,
    label: str = "q",
    corrected: bool = False,
    evidence: str = "auto",
    evidence_budget: int = 0,
) -> Diagnostics:
    """Diagnose any distribution ``q`` over ``model``'s unconstrained space (event shape ``(model.dim,)``).

    ``evidence``: ``"auto"`` (importance sampling, upgraded to bridge sampling with ``evidence_budget``
    gradients when it is unreliable; see :mod:`.evidence`), ``"is"``, ``"bridge"`` or ``"ais"`` (forced,
    with ``evidence_budget``)."""
    if num_draws < 100:
        raise ValueError(f"num_draws must be at least 100 for a Pareto-tail fit, got {num_draws}")
    imp = importance_draws(model, q, num_draws, seed)
    lw = imp.log_weights
    if not torch.isfinite(lw).any():
        raise ValueError(f"{model.name}: the model's log density is -inf or NaN at every draw of q")
    finite = lw[torch.isfinite(lw)]
    elbo = finite.mean().item()
    elbo_se = (finite.std() / math.sqrt(finite.numel())).item() if finite.numel() > 1 else math.inf
    with seeded(None if seed is None else seed + 1):  # random derived quantities (Stan's generated) repeat too
        z = model.constrained(imp.u)
    ps = psis(lw)
    d = Diagnostics(
        psis=ps,
        log_evidence=with_subsample_error(log_evidence(lw, label, khat=ps.khat), model),
        elbo=elbo,
        elbo_se=elbo_se,
        draws={k: v.detach() for k, v in z.items()},
        unconstrained=imp.u.detach(),
        log_q=imp.log_q,
        num_failed=imp.num_failed,
    )
    names = getattr(model, "element_names", None)
    d.psis_shift, d.psis_shift_at, d.psis_shift_noise = _psis_shift(d.draws, d.psis.weights, names)
    d.psis_widen, d.psis_widen_at = _psis_widen(d.draws, d.psis.weights, names)
    d.evidence = policy_evidence(model, q, d.log_evidence, evidence, evidence_budget, seed)
    d.messages = _messages(d, label, corrected)
    if warn:
        for m in d.messages:
            warnings.warn(f"{model.name}: {m}", DiagnosticWarning, stacklevel=3)
    return d


def diagnose(
    result,
    num_draws: int = 4000,
    seed: int | None = 0,
    warn: bool = True,
    corrected: bool = False,
    evidence: str = "auto",
    evidence_budget: int | None = None,
) -> Diagnostics:
    """Diagnose a :class:`~varinf.optim.FitResult` (its q = ``result.family()``) with ``num_draws`` fresh draws.

    ``corrected``: the result reports PSIS-corrected estimates when k-hat < 0.5 (``FitResult.report == "psis"``),
    so the PSIS mean-shift warning is moot there and not raised.
    ``evidence_budget`` (model gradient evaluations for bridge sampling under the ``"auto"`` policy) defaults
    to the fit's own ``grad_evals``, capped at 20,000: the diagnosis never spends more gradients than the fit.

    Example:
        >>> import torch, varinf
        >>> from varinf.models import NormalNormal
        >>> res = varinf.fit(NormalNormal(torch.tensor([1.0, 2.0])), max_steps=2000, progress=False)
        >>> d = diagnose(res)
        >>> d.verdict
        'good'
    """
    with torch.no_grad():
        q = result.family()
    model = result.model_for_draws() if hasattr(result, "model_for_draws") else result.model  # large data: subsample
    if evidence_budget is None:
        evidence_budget = min(int(result.grad_evals), 20_000)
    return diagnose_q(
        model, q, num_draws, seed, warn, label=result.family_label, corrected=corrected, evidence=evidence,
        evidence_budget=evidence_budget,
    )
