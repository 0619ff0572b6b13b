r"""``diagnose``: did the variational fit work? PSIS :math:`\hat k`, ESS, log evidence, ELBO, warnings.

From ``S`` fresh draws :math:`u_s \sim q` (unconstrained space) and :math:`\log w_s = \log p_U(x, u_s) - \log q(u_s)`:

- PSIS :math:`\hat k` and the smoothed weights (:mod:`.psis_weights`), with the verdict and its explanation;
- :math:`\log p(x)` by importance sampling with q as proposal (:mod:`.importance`), with a standard error
  only where :math:`\hat k < 0.25` says the weights' variance is finite and estimable; otherwise stated as a lower bound,
  and, under the ``"auto"`` policy and a large enough budget, replaced by bridge sampling (:mod:`.evidence_policy`);
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
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

from ..errors import DiagnosticWarning
from ..errors import warn as warn_user
from ..utils import seeded
from ..utils.weighted import weighted_mean_sd
from .evidence_policy import EvidencePolicy, policy_evidence, with_subsample_error
from .evidence_result import LogEvidence
from .importance import importance_draws, log_evidence
from .psis_weights import KHAT_GOOD, PSISResult, psis

__all__ = ["SHIFT_TOL", "SHIFT_Z", "Diagnostics", "MeanShift", "diagnose", "diagnose_q", "psis_mean_shift", "shift_suspect"]

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
    "unknown": "k-hat could not be estimated (the largest importance ratios are degenerate); do not rely on q",
}


@dataclass(frozen=True)
class MeanShift:
    r"""How far PSIS moves q's means and sds, in (estimated) posterior sds, over the scalars of the latents.

    Attributes:
        shift: largest :math:`|E_{\mathrm{PSIS}}[z_i] - E_q[z_i]| / \mathrm{sd}_{\mathrm{PSIS}}(z_i)`: how far q's
            mean is from the posterior's (the scalar flagged by :func:`shift_suspect` first, else the largest).
        at: where, e.g. ``"beta[2]"`` (0-based).
        noise: Monte Carlo sd of that shift (same units).
        widen, widen_at: largest PSIS sd / q sd, and where (q too narrow).
    """

    shift: float = math.nan
    at: str = ""
    noise: float = math.nan
    widen: float = math.nan
    widen_at: str = ""


@dataclass(frozen=True)
class Diagnostics:
    r"""What :func:`diagnose` found about a fitted q (built complete, once).

    Attributes:
        psis: :class:`~varinf.diagnostics.psis_weights.PSISResult` (:math:`\hat k`, raw and smoothed log weights, ESS).
        log_evidence: importance-sampling :class:`~varinf.diagnostics.evidence_result.LogEvidence` with q as
            proposal (nats), ``reliable`` only when :math:`\hat k < 0.25`.
        evidence: the best :math:`\log p(x)` estimate the policy produced (``log_evidence`` itself, or bridge
            sampling when IS was unreliable and the budget allowed; ``evidence.method`` names it).
        elbo, elbo_se: ELBO estimate from the same draws and its standard error (nats).
        draws: ``{latent: (S, *shape)}`` constrained draws of q the weights belong to.
        unconstrained: ``(S, D)`` the same draws in unconstrained space.
        log_q: ``(S,)`` :math:`\log q(u_s)` (float64).
        shift: :class:`MeanShift`, how far PSIS moves q's means and sds.
        num_failed: draws where the model's log density was NaN (given weight 0).
        messages: the warnings raised (also in :meth:`summary_lines`).
    """

    psis: PSISResult
    log_evidence: LogEvidence
    evidence: LogEvidence
    elbo: float
    elbo_se: float
    draws: dict[str, Tensor]
    unconstrained: Tensor
    log_q: Tensor
    shift: MeanShift
    num_failed: int = 0
    messages: tuple[str, ...] = ()

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
        """``"good"`` / ``"ok"`` / ``"bad"`` / ``"very bad"`` / ``"unknown"`` (see :mod:`.psis_weights`)."""
        return self.psis.verdict

    @property
    def reliable(self) -> bool:
        """:math:`\\hat k` at most the sample-size threshold: PSIS-corrected estimates can be trusted."""
        return self.verdict in ("good", "ok")

    @property
    def psis_shift(self) -> float:
        """Largest PSIS shift of q's means, in posterior sds (:attr:`MeanShift.shift`)."""
        return self.shift.shift

    @property
    def psis_shift_at(self) -> str:
        return self.shift.at

    @property
    def shift_noise(self) -> float:
        """Monte Carlo sd of :attr:`psis_shift` at the scalar where it is largest (posterior sds)."""
        return self.shift.noise

    @property
    def psis_widen(self) -> float:
        return self.shift.widen

    @property
    def psis_widen_at(self) -> str:
        return self.shift.widen_at

    @property
    def q_draws_suspect(self) -> bool:
        """Whether q's own draws may be off by 0.1 posterior sd or more (:func:`shift_suspect` of the PSIS shift)."""
        return shift_suspect(self.psis_shift, self.shift_noise)

    @property
    def kl(self) -> float:
        r""":math:`\mathrm{KL}(q\,\|\,p(\cdot\mid x)) \approx \log\hat Z - \mathrm{ELBO}` with the best evidence
        estimate (nats; meaningful when that estimate is reliable)."""
        return self.evidence.estimate - self.elbo

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

    def _moments(self) -> dict[str, tuple[Tensor, Tensor]]:
        w = self.psis.weights
        out = {}
        for k, v in self.draws.items():
            mean, sd = weighted_mean_sd(v.double().reshape(v.shape[0], -1), w)
            out[k] = (mean.reshape(v.shape[1:]), sd.reshape(v.shape[1:]))
        return out

    def mean(self) -> dict[str, Tensor]:
        """PSIS-corrected posterior mean of every latent (constrained space)."""
        return {k: m for k, (m, _) in self._moments().items()}

    def sd(self) -> dict[str, Tensor]:
        """PSIS-corrected posterior standard deviation of every latent."""
        return {k: s for k, (_, s) in self._moments().items()}

    def resample(self, n: int = 1000, seed: int | None = None) -> dict[str, Tensor]:
        """``n`` draws resampled with replacement by the smoothed weights (sampling-importance-resampling):
        approximately posterior draws when :math:`\\hat k` is small. ``{latent: (n, *shape)}``; fresh randomness
        unless ``seed`` is given."""
        return {k: v[idx] for k, v in self.draws.items() for idx in [self.resample_index(n, seed).to(v.device)]}

    def resample_index(self, n: int, seed: int | None = None) -> Tensor:
        """``(n,)`` indices into the draws, drawn with replacement in proportion to the smoothed weights."""
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        return torch.multinomial(self.psis.weights.float(), n, replacement=True, generator=g)

    # ------------------------------------------------------------------ reporting
    def summary_lines(self) -> list[str]:
        """Lines appended to ``FitResult.summary()``."""
        p = self.psis
        k = "n/a" if math.isnan(p.khat) else f"{p.khat:.2f}"
        ev = self.evidence
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
        ev = self.evidence
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


def psis_mean_shift(draws: dict[str, Tensor], weights: Tensor, label=None) -> MeanShift:
    r"""Largest PSIS shift of q's means in posterior sds (where, its Monte Carlo sd), and the largest widening.

    Per scalar :math:`x`: :math:`\Delta = \sum_s (\tilde w_s - 1/S)\,x_s` (PSIS mean minus q's sample mean
    on the same draws), scaled by the PSIS sd (the posterior-sd estimate; q's sd where that is zero). Its noise
    is :math:`\sqrt{\sum_s (\tilde w_s - 1/S)^2 (x_s - \bar x_{\rm PSIS})^2}` on the same scale. Reported: the
    scalar with the largest shift among those :func:`shift_suspect` flags, else the largest shift overall; and
    the largest ratio PSIS sd / q sd.
    """
    best = (False, -math.inf, "", 0.0)  # (flagged, shift, where, noise)
    widen, widen_at = 0.0, ""
    w = weights.double()
    for name, v in draws.items():
        x = v.double().reshape(v.shape[0], -1)
        wx = w.to(x.device)
        dw = (wx - 1.0 / x.shape[0])[:, None]
        mean_p, sd_p = weighted_mean_sd(x, wx)
        sd_q = x.std(0)
        sd = torch.where(sd_p > 0, sd_p, sd_q).clamp_min(1e-300)
        shift = ((dw * x).sum(0).abs() / sd).tolist()
        noise = (((dw * (x - mean_p)).square().sum(0)).sqrt() / sd).tolist()
        fixed = _constant(x).tolist()
        for j, (sj, nj) in enumerate(zip(shift, noise)):
            if fixed[j]:
                continue
            cand = (shift_suspect(sj, nj), sj)
            if cand > best[:2]:
                best = (cand[0], sj, _where(name, v, j, label), nj)
        ratio = torch.where(_constant(x), torch.zeros_like(sd_p), sd_p / sd_q.clamp_min(1e-300))
        j = int(ratio.argmax())
        if ratio[j].item() > widen:
            widen, widen_at = ratio[j].item(), _where(name, v, j, label)
    return MeanShift(best[1], best[2], best[3], widen, widen_at)


def _constant(x: Tensor) -> Tensor:
    """Scalars that do not vary over the draws ``x`` ``(S, k)`` beyond rounding (a Cholesky factor's fixed
    1 on the diagonal): no shift or widening to report there."""
    return x.std(0) <= 1e-10 * x.abs().amax(0).clamp_min(1e-300)


def _where(name: str, v: Tensor, j: int, label) -> str:
    """The name of scalar ``j`` of draws ``v`` ``(S, *shape)``: ``label(name, shape)[j]`` (the model's
    :meth:`~varinf.models.Model.element_names`) when given, else 0-based indices: ``"beta[1,0]"``."""
    if v.dim() == 1:
        return name
    if label is not None:
        return label(name, tuple(v.shape[1:]))[j]
    idx, shape = [], v.shape[1:]
    for s in reversed(shape):
        idx.append(j % s)
        j //= s
    return f"{name}[{','.join(map(str, idx[::-1]))}]"


def _messages(p: PSISResult, s: MeanShift, num_failed: int, family: str, corrected: bool) -> tuple[str, ...]:
    msgs = []
    verdict = p.verdict
    if verdict in ("bad", "very bad"):
        msgs.append(
            f"k-hat = {p.khat:.2f} > {p.threshold:.2f}: the {family} approximation is unreliable (VI typically "
            "underestimates posterior variance), and so are its draws and PSIS-corrected ones. Try a richer family "
            "(family='fullrank' or 'flow'), a reparameterization (e.g. non-centered hierarchical models), or more "
            "optimization steps."
        )
    elif corrected and verdict == "ok" and (s.shift > max(2 * SHIFT_TOL, SHIFT_Z * s.noise) or s.widen > WIDEN_TOL):
        # the fit reports PSIS-corrected estimates; between 0.5 and the threshold they converge slowly, so a large
        # correction (a mean moved, or q far too narrow somewhere) means they rest on a few heavy draws
        msgs.append(
            f"k-hat = {p.khat:.2f} (between {KHAT_GOOD} and {p.threshold:.2f}): the estimates shown are PSIS-corrected, "
            f"moving q's mean of {s.at} by {s.shift:.2f} posterior sds and widening its sd of {s.widen_at} "
            f"{s.widen:.2f}-fold, from an effective sample size of {p.ess:.0f}: at this k-hat they converge "
            "slowly. Check with more draws (diagnose_draws) or a richer family."
        )
    elif verdict in ("good", "ok") and not corrected and shift_suspect(s.shift, s.noise):
        # k-hat says PSIS is trustworthy, and PSIS disagrees with q: q's own point estimates are biased
        msgs.append(
            f"k-hat = {p.khat:.2f} is acceptable, but PSIS moves q's mean of {s.at} by {s.shift:.2f} "
            f"± {s.noise:.2f} posterior sds: q's means and draws may be off by about that much (an early stop, too "
            "large a step size, or the family's own bias). Use the PSIS-corrected estimates (diagnostics.mean(), "
            "res.draws(corrected=True)), fit longer or use a richer family."
        )
    elif verdict == "unknown":
        msgs.append(f"PSIS k-hat could not be estimated: {_MEANING['unknown']}")
    if num_failed:
        msgs.append(
            f"the model's log density was NaN at {num_failed} of {p.num_draws} draws of q (given weight 0); "
            "the estimates above are biased; check the model's numerics where q puts mass"
        )
    return tuple(msgs)


@torch.no_grad()
def diagnose_q(
    model,
    q: Distribution,
    num_draws: int = 4000,
    seed: int | None = 0,
    warn: bool = True,
    label: str = "q",
    corrected: bool = False,
    evidence: str | EvidencePolicy = "auto",
) -> Diagnostics:
    """Diagnose any distribution ``q`` over ``model``'s unconstrained space (event shape ``(model.dim,)``).

    ``evidence``: an :class:`~.evidence_policy.EvidencePolicy`, or its method name with no gradient budget:
    ``"auto"`` (importance sampling, upgraded to bridge sampling when it is unreliable and the budget allows;
    see :mod:`.evidence_policy`), ``"is"``, ``"bridge"`` or ``"ais"``.
    ``corrected``: the fit reports PSIS-corrected estimates (and draws), so q's own mean shift is not warned
    about when k-hat allows the correction."""
    if num_draws < 100:
        raise ValueError(f"num_draws must be at least 100 for a Pareto-tail fit, got {num_draws}")
    policy = evidence if isinstance(evidence, EvidencePolicy) else EvidencePolicy(evidence, 0)
    imp = importance_draws(model, q, num_draws, seed)
    lw = imp.log_weights
    if not torch.isfinite(lw).any():
        raise ValueError(f"{model.name}: the model's log density is -inf or NaN at every draw of q")
    finite = lw[torch.isfinite(lw)]
    elbo_se = (finite.std() / math.sqrt(finite.numel())).item() if finite.numel() > 1 else math.inf
    with seeded(None if seed is None else seed + 1):  # random derived quantities (Stan's generated) repeat too
        z = model.constrained(imp.u)
    draws = {k: v.detach() for k, v in z.items()}
    ps = psis(lw)
    shift = psis_mean_shift(draws, ps.weights, getattr(model, "element_names", None))
    is_estimate = with_subsample_error(log_evidence(lw, label, khat=ps.khat), model)
    messages = _messages(ps, shift, imp.num_failed, label, corrected)
    if warn:
        for m in messages:
            warn_user(f"{model.name}: {m}", DiagnosticWarning)
    return Diagnostics(
        psis=ps, log_evidence=is_estimate, evidence=policy_evidence(model, q, is_estimate, policy, seed),
        elbo=finite.mean().item(), elbo_se=elbo_se, draws=draws, unconstrained=imp.u.detach(), log_q=imp.log_q,
        shift=shift, num_failed=imp.num_failed, messages=messages,
    )  # fmt: skip


def diagnose(
    result,
    num_draws: int = 4000,
    seed: int | None = 0,
    warn: bool = True,
    corrected: bool | None = None,
    evidence: str = "auto",
    evidence_budget: int | None = None,
) -> Diagnostics:
    """Diagnose a fit (a :class:`~varinf.optim.FitResult` or a method's :class:`~varinf.optim.MethodRun`: its
    q = ``result.family()``) with ``num_draws`` fresh draws.

    ``corrected``: whether the fit reports PSIS-corrected estimates (default: what ``result.report`` asks for),
    so the PSIS mean-shift warning is moot where k-hat allows the correction.
    ``evidence_budget`` (model gradient evaluations for bridge sampling under the ``"auto"`` policy) defaults
    to the fit's own ``grad_evals``, capped at 20,000: the diagnosis never spends more gradients than the fit.
    Models with more than 50,000 data rows are evaluated through ``result.draws_model`` (a subsample estimate
    of each draw's log density with a stated error, :mod:`varinf.models.subsample`).

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
    if evidence_budget is None:
        evidence_budget = min(int(result.grad_evals), 20_000)
    if corrected is None:
        corrected = result.report == "psis"
    return diagnose_q(result.draws_model, q, num_draws, seed, warn, result.family_label, corrected,
                      EvidencePolicy(evidence, evidence_budget))  # fmt: skip
