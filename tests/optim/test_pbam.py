"""Patch-step BaM: the factored match equals the dense BaM update, the patch keeps the marginals, the stationarity
monitor's memory is bounded, and method="auto" fits an exact Gaussian hierarchy with D > 300 in low rank."""

from __future__ import annotations

import math

import pytest
import torch

from varinf.models import HierarchicalNormal
from varinf.optim import optimize
from varinf.optim.methods import bam_lowrank
from varinf.optim.methods.bam import _match as dense_match
from varinf.optim.methods.bam_lowrank import LowRankState, _match, patch
from varinf.optim.stationarity import MAX_BLOCKS, ParameterStationarity, Schedule

pytestmark = pytest.mark.usefixtures("float64")


def _state(D, k, g):
    return LowRankState(torch.randn(D, generator=g), 0.5 + torch.rand(D, generator=g), torch.randn(D, k, generator=g))


@pytest.mark.parametrize("lam", [0.1, 3.0, 1e4])
def test_factored_match_equals_the_dense_bam_update(lam):
    g = torch.Generator().manual_seed(0)
    D, k, B = 9, 2, 5  # B < D: the batch covariances are rank deficient, as in high dimensions
    st = _state(D, k, g)
    z, grads = torch.randn(B, D, generator=g), torch.randn(B, D, generator=g)
    loc, cov_mv, diag = _match(st, z, grads, lam)
    dense_loc, dense_cov = dense_match(st.loc, torch.diag(st.psi) + st.lam @ st.lam.T, z, grads, lam)
    torch.testing.assert_close(loc, dense_loc, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(cov_mv(torch.eye(D)), dense_cov, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(diag, dense_cov.diagonal(), rtol=1e-8, atol=1e-8)


def test_patch_is_the_factor_analysis_fit_and_keeps_the_marginals():
    g = torch.Generator().manual_seed(1)
    D, k = 30, 3
    lam_true = torch.randn(D, k, generator=g)
    exact = torch.diag(0.3 + torch.rand(D, generator=g)) + lam_true @ lam_true.T
    # a representable covariance is recovered exactly ...
    psi, lam = patch(lambda X: exact @ X, exact.diagonal(), torch.ones(D), 0.1 * torch.randn(D, k, generator=g),
                     steps=5000, tol=1e-12)  # fmt: skip
    torch.testing.assert_close(torch.diag(psi) + lam @ lam.T, exact, rtol=1e-6, atol=1e-6)
    # ... and for any other the fit keeps the diagonal (the marginal variances) at convergence
    A = torch.randn(D, D, generator=g)
    other = A @ A.T / D + torch.eye(D)
    psi, lam = patch(lambda X: other @ X, other.diagonal(), torch.ones(D), 0.1 * torch.randn(D, k, generator=g),
                     steps=5000, tol=1e-12)  # fmt: skip
    torch.testing.assert_close(psi + lam.square().sum(1), other.diagonal(), rtol=1e-6, atol=1e-6)


def test_pbam_step_never_forms_a_dense_matrix_and_counts_gradients():
    g = torch.Generator().manual_seed(2)
    D, k, B = 2000, 3, 8
    st = _state(D, k, g)
    calls = []

    def score(z):
        calls.append(z.shape)
        return -0.5 * z.square().sum(-1), -z

    new, used = bam_lowrank.step(st, score, B, lam_step=10.0)
    assert used == B and calls == [torch.Size([B, D])] and new.grad_evals == B and new.t == 1
    assert new.lam.shape == (D, k) and bool((new.psi > 0).all())


def test_stationarity_memory_is_bounded_and_still_detects_drift():
    g = torch.Generator().manual_seed(3)
    mon = ParameterStationarity(tol=0.05)
    for _ in range(5000):
        x = 0.02 * torch.randn(4, generator=g)
        mon.update(x, x, torch.ones(4))
    assert len(mon._blocks) <= MAX_BLOCKS and mon.count == 5000
    assert mon.average()[0].abs().max() < 0.01
    moving = ParameterStationarity(tol=0.05)
    for t in range(3000):  # a steady climb never looks stationary, however long the run
        x = torch.full((4,), 0.01 * t)
        assert not moving.update(x, x, torch.ones(4))


@pytest.mark.parametrize("levels", [1, 2])
def test_pbam_fits_an_exact_gaussian_hierarchy_above_the_full_rank_threshold(levels):
    model = HierarchicalNormal.synthetic(400, levels=levels, seed=4).double()
    res = optimize(model, "lowrank", method="bam", progress=False, seed=0)
    assert res.family_name == "lowrank" and res.converged  # method="bam" with low rank: patch-step BaM
    exact = model.exact_marginals()
    mean = torch.cat([exact[lat.name][0].reshape(-1) for lat in model.latents])
    sd = torch.cat([exact[lat.name][1].reshape(-1) for lat in model.latents])
    q = res.posterior()
    assert ((q.mean - mean).abs() / sd).max() < 0.05
    ratio = q.stddev / sd
    assert 0.9 < ratio.min() and ratio.max() < 1.05


def test_pbam_iterate_on_a_representable_gaussian_with_few_draws():
    # B < D: each iteration sees 8 of 40 directions; the window of at least D / B iterations must not stop early
    D, k = 40, 2
    g = torch.Generator().manual_seed(5)
    lam_true = torch.randn(D, k, generator=g)
    psi_true = 0.5 + torch.rand(D, generator=g)
    mean = torch.randn(D, generator=g)
    prec = torch.linalg.inv(torch.diag(psi_true) + lam_true @ lam_true.T)

    def score(z):
        d = z - mean
        return -0.5 * ((d @ prec) * d).sum(-1), -d @ prec

    st = LowRankState(torch.zeros(D), torch.ones(D), 0.1 * torch.randn(D, k, generator=g))
    st, reason, converged = bam_lowrank.iterate(st, score, 8, Schedule(5000))
    assert converged, reason
    sd = (psi_true + lam_true.square().sum(1)).sqrt()
    assert ((st.loc - mean).abs() / sd).max() < 0.05
    assert (st.variance.sqrt() / sd - 1).abs().max() < 0.05
    assert math.isfinite(st.trace[-1])


def test_unusable_names_what_breaks_a_low_rank_gaussian():
    D = 50
    zeros, ones = torch.zeros(D), torch.ones(D)
    assert bam_lowrank.unusable(LowRankState(zeros, ones, torch.ones(D, 2))) == ""
    assert bam_lowrank.unusable(LowRankState(zeros + float("nan"), ones, torch.ones(D, 2))) == "a non-finite mean"
    assert bam_lowrank.unusable(LowRankState(zeros, 0 * ones, torch.ones(D, 2))) == "a diagonal that is not positive"
    # a vanishing diagonal under collinear factors: I + Lambda^T Psi^-1 Lambda is not numerically positive definite
    tiny = LowRankState(zeros, 1e-20 * ones, torch.ones(D, 2))
    assert bam_lowrank.unusable(tiny) == "a covariance that is not positive definite"


def test_pbam_steps_back_where_the_density_is_not_finite_and_stops_after_repeated_failures():
    D = 20

    def wall(z):  # a standard normal cut off beyond |z_1| > 3: the density is -inf there
        lp = -0.5 * z.square().sum(-1)
        out = z[:, 0].abs() > 3
        return lp.masked_fill(out, -math.inf), torch.where(out[:, None], torch.nan, -z)

    far = LowRankState(torch.full((D,), 10.0), torch.ones(D), 0.1 * torch.ones(D, 2))  # every draw beyond the wall
    with pytest.raises(FloatingPointError, match="non-finite log density"):
        bam_lowrank.step(far, wall, 8, lam_step=1.0)
    st, reason, converged = bam_lowrank.iterate(far, wall, 8, Schedule(500))
    assert not converged and "numerically unusable" in reason
    assert st.t == bam_lowrank.MAX_FAILURES and bam_lowrank.unusable(st) == ""  # q kept as it was, not collapsed
    torch.testing.assert_close(st.variance, far.variance)
    # started inside, the same target converges: the steps that throw draws beyond the wall are taken back
    inside = LowRankState(torch.zeros(D), torch.ones(D), 0.1 * torch.ones(D, 2))
    st, reason, converged = bam_lowrank.iterate(inside, wall, 8, Schedule(5000))
    assert converged, reason
    assert bam_lowrank.unusable(st) == "" and (st.loc.abs() < 0.5).all()
    assert (st.variance.sqrt() - 1).abs().max() < 0.2


def test_auto_fits_low_rank_by_pbam_above_the_full_rank_threshold_and_polishes_when_pbam_breaks(monkeypatch):
    model = HierarchicalNormal.synthetic(400, levels=1, seed=4).double()
    res = optimize(model, progress=False, seed=0)
    assert res.route == ("pathfinder", "pbam") and res.family_name == "lowrank" and res.converged

    def broken(*args, **kwargs):
        raise FloatingPointError("low-rank BaM produced a non-finite mean")

    monkeypatch.setattr(bam_lowrank, "step", broken)
    res = optimize(model, progress=False, seed=0, max_steps=300)
    assert res.route == ("pathfinder", "pbam", "advi polish")
    exact = model.exact_marginals()
    mean = torch.cat([exact[lat.name][0].reshape(-1) for lat in model.latents])
    sd = torch.cat([exact[lat.name][1].reshape(-1) for lat in model.latents])
    assert ((res.posterior().mean - mean).abs() / sd).max() < 0.5  # the polish ran and its q is sane


def test_a_pbam_run_that_diverged_is_polished_under_auto_and_a_one_line_error_as_a_method(monkeypatch):
    from varinf.errors import FitError

    model = HierarchicalNormal.synthetic(400, levels=1, seed=4).double()
    real = bam_lowrank.iterate

    def diverged(state, score_fn, num_draws, schedule, **kwargs):  # q ends where every draw overflows the log
        st, _, _ = real(state, score_fn, num_draws, Schedule(20))  # density (as a run along a flat direction can)
        return LowRankState(torch.full_like(st.loc, 1e300), st.psi, st.lam, st.t, st.grad_evals), "drifting", False

    monkeypatch.setattr(bam_lowrank, "iterate", diverged)
    res = optimize(model, progress=False, seed=0, max_steps=300)
    assert res.route == ("pathfinder", "pbam", "advi polish") and torch.isfinite(res.posterior().mean).all()
    with pytest.raises(FitError, match=r"low-rank BaM diverged .*0% of q's draws have a finite log density"):
        optimize(model, "lowrank", method="bam", progress=False, seed=0)


def test_pbam_takes_back_an_update_thrown_far_by_an_extreme_score():
    D = 20
    st = LowRankState(torch.zeros(D), torch.ones(D), 0.1 * torch.ones(D, 2))

    def tail(z):  # a standard normal whose score is huge at one draw (as far in a funnel's tail)
        g = -z.clone()
        g[0] = 1e12
        return -0.5 * z.square().sum(-1), g

    with pytest.raises(FloatingPointError, match="moved a mean by"):
        bam_lowrank.step(st, tail, 8, lam_step=1.0)
    new, used = bam_lowrank.step(st, lambda z: (-0.5 * z.square().sum(-1), -z), 8, lam_step=1.0)
    assert used == 8 and ((new.loc - st.loc).abs() / st.variance.sqrt()).max() < bam_lowrank.MAX_MOVE


def test_an_unconverged_pbam_q_far_worse_than_its_start_is_polished_under_auto_and_refused_as_a_method(monkeypatch):
    from varinf.errors import ConvergenceWarning, FitError

    model = HierarchicalNormal.synthetic(400, levels=1, seed=4).double()
    real = bam_lowrank.iterate

    def wandered(state, score_fn, num_draws, schedule, **kwargs):  # finite density, but 50 sds off
        st, _, _ = real(state, score_fn, num_draws, Schedule(20))
        far = st.loc + 50 * st.variance.sqrt()
        return LowRankState(far, st.psi, st.lam, st.t, st.grad_evals), "drifting", False

    monkeypatch.setattr(bam_lowrank, "iterate", wandered)
    res = optimize(model, progress=False, seed=0, max_steps=300)
    assert res.route == ("pathfinder", "pbam", "advi polish")
    with pytest.raises(FitError, match=r"low-rank BaM wandered off \(drifting\): its q's ELBO is .* nats below"):
        optimize(model, "lowrank", method="bam", progress=False, seed=0)  # as a method: one line, not that q

    def unconverged_but_fine(state, score_fn, num_draws, schedule, **kwargs):
        st, _, _ = real(state, score_fn, num_draws, schedule)
        return st, "drifting", False

    monkeypatch.setattr(bam_lowrank, "iterate", unconverged_but_fine)
    res = optimize(model, progress=False, seed=0)
    assert res.route == ("pathfinder", "pbam")  # as good as its start or better: kept
    with pytest.warns(ConvergenceWarning, match="low-rank BaM not converged"):
        res = optimize(model, "lowrank", method="bam", progress=False, seed=0)
    assert res.method == "bam" and not res.converged
