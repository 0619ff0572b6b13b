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
  ``SHIFT_Z`` times its own Monte Carlo noise, or is too noisy to rule out 0.1 (:func:`shift_suspect`), or
  exceeds 0.1 (:func:`q_off`), a second warning says q's point estimates may be biased, whichever estimates the
  summary shows, and the fit's :attr:`~Diagnostics.verdict` is at best "ok" (:func:`fit_verdict`).

Advice in the messages names the reader's knobs (:mod:`varinf.advice`): keywords in Python, flags in the CLI.

Cost: ``S`` draws and one batched log-density evaluation (no gradients), small next to a fit, in chunks of
about 4M numbers (:class:`~varinf.optim.draw_stream.DrawStream`: above ``S x D`` = 16M the draws are not kept but
drawn again for each later pass, so memory stays O(chunk x D) at any D); every per-scalar statistic (PSIS
means and sds, the mean shift and its noise) comes from one pass over the chunks (:func:`column_stats`); bridge
sampling, when the policy runs it, costs its budget in gradients (reported).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.distributions import Distribution

from ..advice import render
from ..errors import DiagnosticWarning
from ..errors import warn as warn_user
from ..optim.draw_stream import DrawStream
from .evidence_policy import EvidencePolicy, policy_evidence, with_subsample_error
from .evidence_result import LogEvidence
from .importance import importance_draws, log_evidence
from .psis_weights import KHAT_GOOD, PSISResult, psis

__all__ = [
    "SHIFT_TOL", "SHIFT_Z", "ColumnStats", "Diagnostics", "MeanShift", "column_stats", "diagnose", "diagnose_q",
    "fit_verdict", "psis_mean_shift", "q_off", "shift_suspect",
]  # fmt: skip

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


_KHAT_MEANING = {  # the k-hat line's few words (the verdict line says what to do)
    "good": "q's tails are close to the posterior's",
    "ok": "PSIS-corrected estimates converge, slowly",
    "bad": "no trustworthy PSIS correction",
    "very bad": "no trustworthy PSIS correction",
    "unknown": "could not be estimated",
}

_VERDICT_SHORT = {
    "good": "q and PSIS-corrected estimates agree; both are reliable",
    "ok": "q is usable; prefer the PSIS-corrected estimates",
    "bad": "q misses parts of the posterior; its estimates are unreliable",
    "very bad": "q misses much of the posterior; do not use its estimates",
    "unknown": "k-hat could not be estimated; do not rely on q",
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
class ColumnStats:
    r"""One latent's per-scalar moments of the diagnostic draws (flattened row-major, float64): PSIS mean and sd,
    q's sample sd of the same draws, the PSIS shift :math:`\sum_s (\tilde w_s - 1/S) x_s` (PSIS mean minus q's
    sample mean) and its Monte Carlo sd :math:`(\sum_s (\tilde w_s - 1/S)^2 (x_s - \bar x_{\rm PSIS})^2)^{1/2}`."""

    shape: tuple[int, ...]
    mean_p: Tensor
    sd_p: Tensor
    sd_q: Tensor
    shift: Tensor
    shift_noise: Tensor


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
        stream: the draws of q the weights belong to (:class:`~varinf.optim.draw_stream.DrawStream`): kept in
            memory when ``S x D`` is small, else drawn again chunk by chunk whenever they are needed, so the
            diagnostics of a model with 100,000 latents never hold ``S x D`` numbers at once. :attr:`draws`
            (``{latent: (S, *shape)}``, constrained) and :attr:`unconstrained` (``(S, D)``) give them all at once.
        log_q: ``(S,)`` :math:`\log q(u_s)` (float64).
        shift: :class:`MeanShift`, how far PSIS moves q's means and sds.
        moments: ``{latent: ColumnStats}``, the per-scalar PSIS moments (:meth:`mean`, :meth:`sd`).
        num_failed: draws where the model's log density was NaN (given weight 0).
        messages: the warnings raised (also in :meth:`summary_lines`).
    """

    psis: PSISResult
    log_evidence: LogEvidence
    evidence: LogEvidence
    elbo: float
    elbo_se: float
    stream: DrawStream = field(repr=False)
    log_q: Tensor = field(repr=False)
    shift: MeanShift
    moments: dict[str, ColumnStats] = field(repr=False)
    num_failed: int = 0
    messages: tuple[str, ...] = ()
    corrected: bool = False

    # ------------------------------------------------------------------ the draws
    @property
    def draws(self) -> dict[str, Tensor]:
        """``{latent: (S, *shape)}`` constrained draws of q the weights belong to, all at once (kept after the first
        call when the stream keeps its draws; else drawn again on every access: prefer :meth:`chunks`)."""
        kept = self.__dict__.get("_draws")
        if kept is not None:
            return kept
        z = {k: v.detach() for k, v in self.stream.constrained().items()}
        if self.stream.keep:  # a cache, not state: the same draws every time (each chunk under its own seed)
            self.__dict__["_draws"] = z
        return z

    @property
    def unconstrained(self) -> Tensor:
        """``(S, D)``: the same draws in unconstrained space, all at once."""
        return self.stream.unconstrained().detach()

    def chunks(self, derived: bool = False):
        """``(rows, {latent: (n, *shape)})`` chunk by chunk (plus the model's derived quantities when ``derived``)."""
        return self.stream.constrained_chunks(derived)

    def unconstrained_at(self, index: Tensor) -> Tensor:
        """``(n, D)``: the unconstrained draws at ``index`` ``(n,)`` (repeats allowed), gathered chunk by chunk."""
        out = None
        for rows, u in self.stream.unconstrained_chunks():
            if out is None:
                out = u.new_empty((index.numel(), u.shape[1]))
            hit = ((index >= rows.start) & (index < rows.stop)).nonzero()[:, 0]
            if hit.numel():
                out[hit.to(u.device)] = u[(index[hit] - rows.start).to(u.device)].detach()
        return out

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
        """The fit's verdict: ``"good"`` / ``"ok"`` / ``"bad"`` / ``"very bad"`` / ``"unknown"``: k-hat's
        (:attr:`khat_verdict`), except that a fit whose PSIS-corrected means differ from q's own by 0.1 posterior
        sd or more (:func:`q_off`) is at best ``"ok"`` (and warns): :func:`fit_verdict`."""
        return fit_verdict(self.psis, self.shift, self.corrected)

    @property
    def khat_verdict(self) -> str:
        """k-hat's verdict alone (:func:`~.psis_weights.khat_verdict`)."""
        return self.psis.verdict

    @property
    def reliable(self) -> bool:
        """:math:`\\hat k` at most the sample-size threshold: PSIS-corrected estimates can be trusted."""
        return self.psis.verdict in ("good", "ok")

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

        ``f`` maps constrained draws ``{latent: (n, *shape)}`` to ``(n, *out)``, one row per draw (it is called on
        chunks of the draws); returns ``(*out)`` (float64).
        """
        w = self.psis.weights.double()
        total = None
        for rows, z in self.chunks():
            v = torch.as_tensor(f(z)).double()
            n = rows.stop - rows.start
            if v.shape[:1] != (n,):
                raise ValueError(f"f must return one row per draw (a leading dimension of {n}), got {tuple(v.shape)}")
            part = torch.tensordot(w[rows].to(v.device), v, dims=([0], [0]))
            total = part if total is None else total + part
        return total

    def mean(self) -> dict[str, Tensor]:
        """PSIS-corrected posterior mean of every latent (constrained space)."""
        return {k: st.mean_p.reshape(st.shape) for k, st in self.moments.items()}

    def sd(self) -> dict[str, Tensor]:
        """PSIS-corrected posterior standard deviation of every latent."""
        return {k: st.sd_p.reshape(st.shape) for k, st in self.moments.items()}

    def resample(self, n: int = 1000, seed: int | None = None) -> dict[str, Tensor]:
        """``n`` draws resampled with replacement by the smoothed weights (sampling-importance-resampling):
        approximately posterior draws when :math:`\\hat k` is small. ``{latent: (n, *shape)}``; fresh randomness
        unless ``seed`` is given. Gathered chunk by chunk."""
        idx = self.resample_index(n, seed)
        out: dict[str, Tensor] = {}
        for rows, z in self.chunks():
            hit = ((idx >= rows.start) & (idx < rows.stop)).nonzero()[:, 0]
            for k, v in z.items():
                if k not in out:
                    out[k] = v.new_empty((n, *v.shape[1:]))
                if hit.numel():
                    out[k][hit.to(v.device)] = v[(idx[hit] - rows.start).to(v.device)].detach()
        return out

    def resample_index(self, n: int, seed: int | None = None) -> Tensor:
        """``(n,)`` indices into the draws, drawn with replacement in proportion to the smoothed weights."""
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        return torch.multinomial(self.psis.weights.float(), n, replacement=True, generator=g)

    # ------------------------------------------------------------------ reporting
    def summary_lines(self, verbose: bool = False) -> list[str]:
        """Lines appended to ``FitResult.summary()``: one per diagnostic with its verdict, the fit's verdict,
        and how to read them (once); ``verbose`` adds the thresholds' sources, the evidence's full account, the
        KL estimate and the Monte Carlo noise of the shift."""
        p, s, ev = self.psis, self.shift, self.evidence
        k = "n/a" if math.isnan(p.khat) else f"{p.khat:.2f}"
        off = q_off(s.shift, s.noise, self.corrected)
        lines = [
            f"k-hat       {k} {p.verdict}: {_KHAT_MEANING[p.verdict]} (ESS {p.ess:.0f} of {p.num_draws} draws)",
            f"mean shift  {s.shift:.2f} posterior sds at {s.at}: "
            + ("q's own means are off by about this" if off else "PSIS barely moves q's means"),
            f"log p(x)    {ev.short()}",
        ]
        if ev is self.log_evidence and not ev.reliable and ev.is_lower_bound:
            lines.append(f"            for an error bar: {render('evidence_bridge')}")
        lines.append(f"verdict     {self.verdict}: {_VERDICT_SHORT[self.verdict]} (details: {render('explain')})")
        if not verbose:
            lines.append(
                f"reading: k-hat < {KHAT_GOOD} good, ≤ {p.threshold:.2f} ok (PSIS-corrected usable), above unreliable; "
                "mean shift < 0.1 sd"
            )
        else:
            lines += [
                f"PSIS k-hat = {k} over {p.num_draws} draws of q -> {p.verdict}: {_MEANING[p.verdict]}",
                f"  k-hat < {KHAT_GOOD} good; {KHAT_GOOD}-{p.threshold:.2f} ok (PSIS-corrected estimates converge); "
                f"> {p.threshold:.2f} unreliable, where {p.threshold:.2f} = min(1 - 1/log10 S, 0.7) ({_REFERENCE})",
                f"  PSIS effective sample size {p.ess:.0f} of {p.num_draws}; PSIS moves q's means by up to "
                f"{s.shift:.3f} posterior sds (at {s.at}; Monte Carlo noise {s.noise:.3f}); it widens an sd at "
                f"most {s.widen:.2f}-fold (at {s.widen_at}); a shift of 0.1 sd or more means q's own estimates are "
                "biased (the verdict is then at best ok)",
                f"log evidence {ev.describe()}",
            ]
            if ev is not self.log_evidence:
                lines.append(f"  (importance sampling with q alone: {self.log_evidence.describe()})")
            elif not ev.reliable:
                lines.append(
                    f"  for an error bar: {render('evidence_bridge')} (about 20,000 gradient evaluations), or "
                    f"{render('evidence_budget', n=20000)}"
                )
            lines.append(
                f"KL(q||posterior) ≈ log p(x) - ELBO = {ev.estimate - self.elbo:.3f} nats (ELBO {self.elbo:.4f} from "
                "these draws)" + ("" if ev.reliable else "; not trustworthy: the evidence above is unreliable")
            )
        for m in self.messages:  # wrapped: the report stays within 100 columns
            lines += textwrap.wrap(f"WARNING: {m}", 100, subsequent_indent="  ") if not verbose else [f"WARNING: {m}"]
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


def column_stats(chunks, weights: Tensor, num_draws: int) -> dict[str, ColumnStats]:
    """:class:`ColumnStats` of every latent in one pass over the draws' ``chunks`` (``(rows, {latent: (n, *shape)})``)
    with normalized PSIS ``weights`` ``(S,)``: per-scalar sums, shifted by the first chunk's means (no
    cancellation), memory O(scalars) whatever ``S``."""
    w = weights.double()
    dw = w - 1.0 / num_draws
    acc: dict[str, dict] = {}
    for rows, z in chunks:
        wr, dr = w[rows], dw[rows]
        for name, v in z.items():
            x = v.detach().double().reshape(v.shape[0], -1)
            a = acc.get(name)
            if a is None:
                a = acc[name] = {"shape": tuple(v.shape[1:]), "K": x.mean(0), **dict.fromkeys(_SUMS, 0.0)}
            y = x - a["K"]
            y2 = y.square()
            for key, (weight, power) in _SUM_TERMS.items():
                u = {"w": wr, "p": None, "d": dr, "e": dr.square()}[weight]
                term = y if power == 1 else y2
                a[key] = a[key] + (term.sum(0) if u is None else u.to(term) @ term)
    sum_dw2 = dw.square().sum()
    out = {}
    for name, a in acc.items():
        m = a["w1"]  # PSIS mean of y (the weights sum to 1)
        sd_p = (a["w2"] - m.square()).clamp_min(0).sqrt()
        mq = a["p1"] / num_draws
        sd_q = ((a["p2"] - num_draws * mq.square()).clamp_min(0) / max(num_draws - 1, 1)).sqrt()
        noise = (a["e2"] - 2 * m * a["e1"] + m.square() * sum_dw2).clamp_min(0).sqrt()
        out[name] = ColumnStats(a["shape"], a["K"] + m, sd_p, sd_q, a["d1"], noise)
    return out


# per-scalar sums: weight (w: PSIS, p: plain, d: w - 1/S, e: (w - 1/S)^2) and power of the shifted draw
_SUM_TERMS = {"w1": ("w", 1), "w2": ("w", 2), "p1": ("p", 1), "p2": ("p", 2), "d1": ("d", 1), "e1": ("e", 1),
              "e2": ("e", 2)}  # fmt: skip
_SUMS = tuple(_SUM_TERMS)


def psis_mean_shift(stats: dict[str, ColumnStats], label=None) -> MeanShift:
    r"""Largest PSIS shift of q's means in posterior sds (where, its Monte Carlo sd), and the largest widening,
    from the latents' :class:`ColumnStats`.

    Per scalar the shift :math:`\Delta` (PSIS mean minus q's sample mean on the same draws) and its noise are
    scaled by the PSIS sd (the posterior-sd estimate; q's sd where that is zero). Reported: the scalar with the
    largest shift among those :func:`shift_suspect` flags, else the largest shift overall; and the largest ratio
    PSIS sd / q sd. Scalars fixed by a constraint (no spread over the draws) are skipped.
    """
    best = (False, -math.inf, "", 0.0)  # (flagged, shift, where, noise)
    widen, widen_at = 0.0, ""
    for name, st in stats.items():
        fixed = _constant(st)
        sd = torch.where(st.sd_p > 0, st.sd_p, st.sd_q).clamp_min(1e-300)
        shift = torch.where(fixed, torch.zeros_like(sd), st.shift.abs() / sd)
        noise = st.shift_noise / sd
        flagged = ((shift > SHIFT_TOL) & (shift > SHIFT_Z * noise)) | (
            (shift > noise) & (shift + SHIFT_Z * noise > 2 * SHIFT_TOL)
        )
        pool = torch.where(flagged, shift, torch.full_like(shift, -math.inf)) if bool(flagged.any()) else shift
        j = int(pool.argmax())
        cand = (bool(flagged.any()), shift[j].item())
        if cand > best[:2]:
            best = (cand[0], cand[1], _where(name, st.shape, j, label), noise[j].item())
        ratio = torch.where(fixed, torch.zeros_like(sd), st.sd_p / st.sd_q.clamp_min(1e-300))
        j = int(ratio.argmax())
        if ratio[j].item() > widen:
            widen, widen_at = ratio[j].item(), _where(name, st.shape, j, label)
    return MeanShift(best[1], best[2], best[3], widen, widen_at)


def _constant(st: ColumnStats) -> Tensor:
    """Scalars that do not vary over the draws beyond rounding (a Cholesky factor's fixed 1 on the diagonal): no
    shift or widening to report there."""
    return st.sd_q <= 1e-10 * st.mean_p.abs().clamp_min(1e-300)


def _where(name: str, shape: tuple[int, ...], j: int, label) -> str:
    """The name of scalar ``j`` of a latent of ``shape``: ``label(name, shape)[j]`` (the model's
    :meth:`~varinf.models.Model.element_names`) when given, else 0-based indices: ``"beta[1,0]"``."""
    if not shape:
        return name
    if label is not None:
        return label(name, shape)[j]
    idx = []
    for s in reversed(shape):
        idx.append(j % s)
        j //= s
    return f"{name}[{','.join(map(str, idx[::-1]))}]"


def q_off(shift: float, noise: float, corrected: bool = False) -> bool:
    """Whether q's own means may be off by 0.1 posterior sd or more. The one rule behind the shift warning and
    the verdict, for every method. When the fit shows q's own estimates (``corrected=False``), it errs on the side
    of warning: :func:`shift_suspect` (above half the tolerance, or too noisy to rule 0.1 out), or a shift above
    0.1 sd however noisy. When the summary and ``res.draws()`` are PSIS-corrected (``corrected=True``), q's own
    means are not what the user reads, so only a shift above 0.1 sd counts."""
    if corrected:
        return shift > 2 * SHIFT_TOL
    return shift_suspect(shift, noise) or shift > 2 * SHIFT_TOL


def fit_verdict(p: PSISResult, s: MeanShift, corrected: bool = False) -> str:
    """The verdict a summary states: k-hat's, except that a fit whose PSIS-corrected and own means differ by
    0.1 posterior sd (:func:`q_off`) is never "good" (it is "ok": the corrected estimates are usable)."""
    verdict = p.verdict
    if verdict == "good" and q_off(s.shift, s.noise, corrected):
        return "ok"
    return verdict


_RICHER = {"meanfield": ("fullrank", "flow"), "lowrank": ("fullrank", "flow"), "fullrank": ("flow",)}


def _richer(family: str) -> str:
    """Advice naming the families richer than ``family`` (in the reader's words)."""
    names = _RICHER.get(family, ())
    if not names:
        return "a richer family"
    return "a richer family (" + " or ".join(render("family", name=n) for n in names) + ")"


def _messages(p: PSISResult, s: MeanShift, num_failed: int, family: str, corrected: bool) -> tuple[str, ...]:
    msgs = []
    verdict = p.verdict
    if verdict in ("bad", "very bad"):
        msgs.append(
            f"k-hat = {p.khat:.2f} > {p.threshold:.2f}: the {family} approximation is unreliable (VI typically "
            "underestimates posterior variance), and so are its draws and PSIS-corrected ones. Try "
            f"{_richer(family)}, a reparameterization (e.g. non-centered hierarchical models), or more "
            f"optimization steps ({render('max_steps')})."
        )
    elif corrected and verdict == "ok" and (s.shift > max(2 * SHIFT_TOL, SHIFT_Z * s.noise) or s.widen > WIDEN_TOL):
        # the fit reports PSIS-corrected estimates; between 0.5 and the threshold they converge slowly, so a large
        # correction (a mean moved, or q far too narrow somewhere) means they rest on a few heavy draws
        msgs.append(
            f"k-hat = {p.khat:.2f} (between {KHAT_GOOD} and {p.threshold:.2f}): the estimates shown are PSIS-corrected, "
            f"moving q's mean of {s.at} by {s.shift:.2f} posterior sds and widening its sd of {s.widen_at} "
            f"{s.widen:.2f}-fold, from an effective sample size of {p.ess:.0f}: at this k-hat they converge "
            f"slowly. Check with more draws ({render('draws')}) or {_richer(family)}."
        )
    elif verdict in ("good", "ok") and q_off(s.shift, s.noise, corrected):
        # k-hat says PSIS is trustworthy, and PSIS disagrees with q: q's own point estimates are biased. The same
        # rule whether the summary shows q's estimates or the corrected ones (only the advice differs)
        if corrected:
            msgs.append(
                f"PSIS moves q's mean of {s.at} by {s.shift:.2f} ± {s.noise:.2f} posterior sds (k-hat {p.khat:.2f}): "
                "q's own means and draws are off by about that much. The estimates shown are PSIS-corrected "
                f"({render('corrected_draws')}); fit longer or use {_richer(family)} to bring q closer."
            )
        else:
            msgs.append(
                f"k-hat = {p.khat:.2f} is acceptable, but PSIS moves q's mean of {s.at} by {s.shift:.2f} "
                f"± {s.noise:.2f} posterior sds: q's means and draws may be off by about that much (an early stop, "
                "too large a step size, or the family's own bias). Use the PSIS-corrected estimates "
                f"({render('psis_estimates')}), fit longer or use {_richer(family)}."
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
    ps = psis(lw)
    moments = column_stats(imp.stream.constrained_chunks(), ps.weights, ps.num_draws)
    shift = psis_mean_shift(moments, getattr(model, "element_names", None))
    is_estimate = with_subsample_error(log_evidence(lw, label, khat=ps.khat), model)
    messages = _messages(ps, shift, imp.num_failed, label, corrected)
    if warn:
        for m in messages:
            warn_user(f"{model.name}: {m}", DiagnosticWarning)
    return Diagnostics(
        psis=ps, log_evidence=is_estimate, evidence=policy_evidence(model, q, is_estimate, policy, seed),
        elbo=finite.mean().item(), elbo_se=elbo_se, stream=imp.stream, log_q=imp.log_q, shift=shift,
        moments=moments, num_failed=imp.num_failed, messages=messages, corrected=corrected,
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
