"""Streamed draws: chunks replay bit for bit, streamed summaries equal in-memory ones (quantiles within a
hundredth of an sd), and the diagnostics give the same numbers whether the draws are kept or drawn again."""

from __future__ import annotations

import warnings

import pytest
import torch

import varinf
from varinf.diagnostics import diagnose
from varinf.models import LinearRegression
from varinf.optim import build_result, draw_stream
from varinf.optim.draw_stream import DrawStream, streamed_moments

pytestmark = pytest.mark.usefixtures("float64")


def _fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return varinf.fit(LinearRegression.synthetic(n=60, d=4, seed=3), "meanfield", method="advi", progress=False,
                          max_steps=300, diagnose=False)  # fmt: skip


def test_chunks_replay_exactly_and_leave_the_global_rng_alone():
    res = _fit()
    state = torch.get_rng_state()
    s = DrawStream(res.model, res.posterior(), 1000, seed=7, chunk=64, max_kept=0)
    a, b = s.unconstrained(), s.unconstrained()
    assert torch.equal(a, b) and a.shape == (1000, res.model.dim) and not s.keep
    assert torch.equal(torch.get_rng_state(), state)
    first = torch.cat([s.draw(c)[0] for c in range(s.num_chunks)])
    assert torch.equal(first, a)
    fresh = DrawStream(res.model, res.posterior(), 10, seed=None)  # a fresh seed from the global RNG
    assert not torch.equal(torch.get_rng_state(), state) and fresh.seed != s.seed


def test_streamed_moments_match_the_in_memory_computation():
    g = torch.Generator().manual_seed(0)
    S, P = 3000, 120
    X = torch.randn(S, P, generator=g) * (0.1 + torch.rand(P, generator=g)) + torch.randn(P, generator=g)
    X[:, :40] = X[:, :40].exp()  # skewed scalars
    w = torch.rand(S, generator=g)
    w = w / w.sum()

    def chunks():
        for i in range(0, S, 500):
            yield slice(i, min(i + 500, S)), {"a": X[i : i + 500, :60], "b": X[i : i + 500, 60:].reshape(-1, 6, 10)}

    qs = torch.tensor([0.05, 0.5, 0.95])
    for weights in (None, w):
        exact = streamed_moments(chunks, S, qs, weights)
        hist = streamed_moments(chunks, S, qs, weights, max_elements=1)  # the three-pass histogram route
        for k, (m, sd, q) in exact.items():
            torch.testing.assert_close(hist[k][0], m)
            torch.testing.assert_close(hist[k][1], sd)
            assert ((hist[k][2] - q).abs() / sd).max() < 0.03  # quantile definitions differ by O(1/S)
        ref = X.mean(0) if weights is None else w @ X
        torch.testing.assert_close(torch.cat([exact["a"][0], exact["b"][0]]), ref)


def test_diagnostics_agree_whether_draws_are_kept_or_replayed(monkeypatch):
    res = _fit()
    kept = diagnose(res, 2000, seed=3, warn=False)
    monkeypatch.setattr(draw_stream, "MAX_KEPT", 0)
    monkeypatch.setattr(draw_stream, "CHUNK_ELEMENTS", 7 * res.model.dim)  # 7 draws a chunk
    streamed = diagnose(res, 2000, seed=3, warn=False)
    assert not streamed.stream.keep and kept.stream.keep
    assert streamed.stream.num_chunks > kept.stream.num_chunks
    # different chunking, different draws: compare each with its own in-memory draws
    for d in (kept, streamed):
        w = d.psis.weights
        beta = d.draws["beta"]
        torch.testing.assert_close(d.mean()["beta"], w @ beta)
        torch.testing.assert_close(d.sd()["beta"], (w @ (beta - w @ beta).square()).sqrt())
        torch.testing.assert_close(d.expectation(lambda z: z["beta"][:, 0] ** 2), w @ beta[:, 0] ** 2)
        r = d.resample(50, seed=1)
        assert r["beta"].shape == (50, 4) and all(bool((beta == row).all(1).any()) for row in r["beta"])
        shift = ((w - 1 / 2000) @ beta).abs() / (w @ (beta - w @ beta).square()).sqrt()
        assert d.psis_shift == pytest.approx(shift.max().item(), rel=1e-9)


def test_summary_streams_with_histogram_quantiles(monkeypatch):
    res = _fit()
    res = build_result(res, diagnose(res, 2000, seed=3, warn=False))
    rows = {r.name: r for r in res.summary(n=2000, seed=1).rows}
    monkeypatch.setattr(draw_stream, "MAX_KEPT", 0)
    monkeypatch.setattr(draw_stream, "BLOCK_ELEMENTS", 1)
    monkeypatch.setattr(draw_stream, "CHUNK_ELEMENTS", 13 * res.model.dim)
    res = build_result(res, diagnose(res, 2000, seed=3, warn=False))
    streamed = {r.name: r for r in res.summary(n=2000, seed=1).rows}
    assert rows.keys() == streamed.keys()
    for name, r in rows.items():  # other chunks, other draws: agreement within Monte Carlo error
        s = streamed[name]
        assert abs(s.mean - r.mean) < 0.15 * r.sd and abs(s.sd / r.sd - 1) < 0.1
        assert all(abs(a - b) < 0.25 * r.sd for a, b in zip(s.quantiles, r.quantiles))


def test_constrained_pieces_are_bounded_by_the_derived_scalars_and_replay_exactly(monkeypatch):
    # 2 latents but 300 random derived scalars per draw: pieces are sized by all 302, not by D = 2
    from torch.distributions import Normal

    from varinf import Latent, Model

    def log_joint(mu, tau):
        return Normal(0.0, 1.0).log_prob(mu) + Normal(0.0, 1.0).log_prob(tau)

    model = Model([Latent("mu", ()), Latent("tau", ())], log_joint, vectorized=True,
                  derived=lambda mu, tau: {"y": mu[..., None] + torch.randn(*mu.shape, 300, dtype=mu.dtype)})  # fmt: skip
    q = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(2), torch.ones(2)), 1)
    monkeypatch.setattr(draw_stream, "CHUNK_ELEMENTS", 302 * 40)
    monkeypatch.setattr(draw_stream, "PROBE_ROWS", 16)
    s = DrawStream(model, q, 1000, seed=5, max_kept=0)
    passes = [list(s.constrained_chunks(derived=True)) for _ in range(2)]
    rows = [r for r, _ in passes[0]]
    assert rows[0] == slice(0, 16) and all(r.stop - r.start <= 40 for r in rows)
    assert [r.start for r in rows[1:]] == [r.stop for r in rows[:-1]] and rows[-1].stop == 1000
    for (ra, za), (rb, zb) in zip(*passes):  # the random derived quantities repeat bit for bit
        assert ra == rb and za.keys() == zb.keys() == {"mu", "tau", "y"}
        assert all(torch.equal(za[k], zb[k]) for k in za) and za["y"].shape == (ra.stop - ra.start, 300)
    whole = s.constrained(derived=True)
    assert whole["y"].shape == (1000, 300) and torch.equal(whole["mu"], s.unconstrained()[:, 0])
