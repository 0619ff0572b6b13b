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

Cost: ``S`` draws and one batched log-density evaluation (no gradients), small next to a fit, in chunks of
about 4M numbers (:class:`~varinf.optim.draw_stream.DrawStream`: above ``S x D`` = 16M the draws are not kept but
drawn again for each later pass, so memory stays O(chunk x D) at any D); bridge
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

from ..optim.draw_stream import DrawStream
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
        stream: the draws of q the weights belong to (:class:`~varinf.optim.draw_stream.DrawStream`): kept in
            memory when ``S x D`` is small, else drawn again chunk by chunk whenever they are needed, so the
            diagnostics of a model with 100,000 latents never hold ``S x D`` numbers at once. :attr:`draws`
            (``{latent: (S, *shape)}``, constrained) and :attr:`unconstrained` (``(S, D)``) give them all at once.
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
    stream: DrawStream = field(repr=False)
    log_q: Tensor = field(repr=False)
    num_failed: int = 0
    psis_shift: float = math.nan
    psis_shift_at: str = ""
    psis_widen: float = math.nan
    psis_widen_at: str = ""
    psis_shift_noise: float = math.nan
    evidence: LogEvidence | None = None
    messages: list[str] = field(default_factory=list)
    _draws: dict[str, Tensor] | None = field(default=None, init=False, repr=False)
    _stats_cache: dict | None = field(default=None, init=False, repr=False)

    # ------------------------------------------------------------------ the draws
    @property
    def draws(self) -> dict[str, Tensor]:
        """``{latent: (S, *shape)}`` constrained draws of q the weights belong to (all at once; cached when the
        stream keeps its draws, else drawn again on every access)."""
        if self._draws is not None:
            return self._draws
        z = {k: v.detach() for k, v in self.stream.constrained().items()}
        if self.stream.keep:
            self._draws = z
        return z

    @property
    def unconstrained(self) -> Tensor:
        """``(S, D)``: the same draws in unconstrained space."""
        return self.stream.unconstrained().detach()

    def chunks(self, derived: bool = False):
        """``(rows, {latent: (n, *shape)})`` chunk by chunk (plus derived quantities when ``derived``)."""
        return self.stream.constrained_chunks(derived)

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

        ``f`` maps constrained draws ``{latent: (n, *shape)}`` to ``(n, *out)``, one row per draw (it is called
        on chunks of the draws); returns ``(*out)`` (float64).
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
        return {k: st.mean_p.reshape(st.shape) for k, st in self._stats().items()}

    def sd(self) -> dict[str, Tensor]:
        """PSIS-corrected posterior standard deviation of every latent."""
        return {k: st.sd_p.reshape(st.shape) for k, st in self._stats().items()}

    def _stats(self) -> dict[str, _ColumnStats]:
        if self._stats_cache is None:
            self._stats_cache = _column_stats(self.chunks(), self.psis.weights, self.num_draws)
        return self._stats_cache

    def resample(self, n: int = 1000, seed: int | None = None) -> dict[str, Tensor]:
        """``n`` draws resampled with replacement by the smoothed weights (sampling-importance-resampling):
        approximately posterior draws when :math:`\\hat k` is small. ``{latent: (n, *shape)}``; fresh randomness
        unless ``seed`` is given."""
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        idx = torch.multinomial(self.psis.weights.float(), n, replacement=True, generator=g)
        out: dict[str, Tensor] = {}
        for rows, z in self.chunks():
            hit = ((idx >= rows.start) & (idx < rows.stop)).nonzero()[:, 0]
            for k, v in z.items():
                if k not in out:
                    out[k] = v.new_empty((n, *v.shape[1:]))
                if hit.numel():
                    out[k][hit.to(v.device)] = v[(idx[hit] - rows.start).to(v.device)]
        return out

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


@dataclass
class _ColumnStats:
    """One latent's per-scalar PSIS-weighted and plain moments of the diagnostic draws (flattened, float64)."""

    shape: tuple[int, ...]
    mean_p: Tensor  # PSIS mean
    sd_p: Tensor  # PSIS sd
    sd_q: Tensor  # q's sample sd of the same draws
    shift: Tensor  # sum_s (w_s - 1/S) x_s: PSIS mean minus q's sample mean
    shift_noise: Tensor  # sqrt(sum_s (w_s - 1/S)^2 (x_s - mean_p)^2)


def _column_stats(chunks, weights: Tensor, S: int) -> dict[str, _ColumnStats]:
    """One pass over the draws' chunks: per-scalar sums, shifted by the first chunk's means (no cancellation)."""
    w = weights.double()
    dw = w - 1.0 / S
    acc: dict[str, dict] = {}
    for rows, z in chunks:
        wr, dr = w[rows], dw[rows]
        for name, v in z.items():
            x = v.detach().double().reshape(v.shape[0], -1)
            a = acc.get(name)
            if a is None:
                a = acc[name] = {"shape": tuple(v.shape[1:]), "K": x.mean(0), **{s: 0.0 for s in _SUMS}}
            y = x - a["K"]
            y2 = y.square()
            a["w1"] = a["w1"] + wr.to(y) @ y
            a["w2"] = a["w2"] + wr.to(y) @ y2
            a["p1"] = a["p1"] + y.sum(0)
            a["p2"] = a["p2"] + y2.sum(0)
            a["d1"] = a["d1"] + dr.to(y) @ y
            a["e1"] = a["e1"] + dr.square().to(y) @ y
            a["e2"] = a["e2"] + dr.square().to(y) @ y2
    sum_dw2 = dw.square().sum()
    out = {}
    for name, a in acc.items():
        m = a["w1"]  # PSIS mean of y (the weights sum to 1)
        sd_p = (a["w2"] - m.square()).clamp_min(0).sqrt()
        mq = a["p1"] / S
        sd_q = ((a["p2"] - S * mq.square()).clamp_min(0) / max(S - 1, 1)).sqrt()
        noise = (a["e2"] - 2 * m * a["e1"] + m.square() * sum_dw2).clamp_min(0).sqrt()
        out[name] = _ColumnStats(a["shape"], a["K"] + m, sd_p, sd_q, a["d1"], noise)
    return out


_SUMS = ("w1", "w2", "p1", "p2", "d1", "e1", "e2")


def _constant(st: _ColumnStats) -> Tensor:
    """Scalars that do not vary over the draws beyond rounding (a Cholesky factor's fixed 1 on the diagonal): no
    shift or widening to report there."""
    return st.sd_q <= 1e-10 * st.mean_p.abs().clamp_min(1e-300)


def _psis_shift(stats: dict[str, _ColumnStats], label=None) -> tuple[float, str, float]:
    r"""Largest PSIS shift of q's means in posterior sds, where, and its Monte Carlo sd.

    Per scalar :math:`x`: :math:`\Delta = \sum_s (\tilde w_s - 1/S)\,x_s` (PSIS mean minus q's sample mean
    on the same draws), scaled by the PSIS sd (the posterior-sd estimate; q's sd where that is zero). Its noise
    is :math:`\sqrt{\sum_s (\tilde w_s - 1/S)^2 (x_s - \bar x_{\rm PSIS})^2}` on the same scale. Reported: the
    scalar with the largest shift among those :func:`shift_suspect` flags, else the largest shift overall.
    """
    best = (False, -math.inf, "", 0.0)  # (flagged, shift, where, noise)
    for name, st in stats.items():
        sd = torch.where(st.sd_p > 0, st.sd_p, st.sd_q).clamp_min(1e-300)
        shift, noise = st.shift.abs() / sd, st.shift_noise / sd
        shift = torch.where(_constant(st), torch.zeros_like(shift), shift)
        flagged = ((shift > SHIFT_TOL) & (shift > SHIFT_Z * noise)) | (
            (shift > noise) & (shift + SHIFT_Z * noise > 2 * SHIFT_TOL)
        )
        pool = torch.where(flagged, shift, torch.full_like(shift, -math.inf)) if bool(flagged.any()) else shift
        j = int(pool.argmax())
        cand = (bool(flagged.any()), shift[j].item())
        if cand > best[:2]:
            best = (cand[0], cand[1], _where(name, st.shape, j, label), noise[j].item())
    return best[1], best[2], best[3]


def _psis_widen(stats: dict[str, _ColumnStats], label=None) -> tuple[float, str]:
    """Largest PSIS sd / q sd over the same scalars, and where: how much too narrow q is."""
    best, where = 0.0, ""
    for name, st in stats.items():
        ratio = st.sd_p / st.sd_q.clamp_min(1e-300)
        ratio = torch.where(_constant(st), torch.zeros_like(ratio), ratio)
        j = int(ratio.argmax())
        if ratio[j].item() > best:
            best, where = ratio[j].item(), _where(name, st.shape, j, label)
    return best, where


def _where(name: str, shape: tuple[int, ...], j: int, label=None) -> str:
    """The name of scalar ``j`` of a latent of ``shape``: ``label(name, shape)[j]`` (the model's
    ``element_names``, where it has them) or 0-based indices."""
    if not shape:
        return name
    if label is not None:
        return label(name, shape)[j]
    return f"{name}[{','.join(map(str, _unravel(j, shape)))}]"


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
    ps = psis(lw)
    d = Diagnostics(
        psis=ps,
        log_evidence=with_subsample_error(log_evidence(lw, label, khat=ps.khat), model),
        elbo=elbo,
        elbo_se=elbo_se,
        stream=imp.stream,
        log_q=imp.log_q,
        num_failed=imp.num_failed,
    )
    stats = d._stats()
    names = getattr(model, "element_names", None)
    d.psis_shift, d.psis_shift_at, d.psis_shift_noise = _psis_shift(stats, names)
    d.psis_widen, d.psis_widen_at = _psis_widen(stats, names)
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
