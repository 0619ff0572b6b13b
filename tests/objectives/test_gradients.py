"""Gradient estimators agree in expectation: reparam, STL, score function (REINFORCE + baselines),
DReG and VIMCO, for the variational parameters and (where the target has them) model parameters."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal

from varinf.families import MeanField
from varinf.objectives import ELBO, IWAE

pytestmark = pytest.mark.usefixtures("float64")


class NonreparamNormal(Normal):
    """A Normal that pretends it cannot be reparameterized (Pyro's test fake)."""

    has_rsample = False


def _setup(R: int, nonreparam: bool = False):
    loc = torch.tensor([0.4, -0.3], requires_grad=True)
    log_scale = torch.tensor([-0.2, 0.3], requires_grad=True)
    theta = torch.tensor(0.7, requires_grad=True)  # a model parameter
    cls = NonreparamNormal if nonreparam else Normal

    def q():
        return Independent(cls(loc.expand(R, 2), log_scale.exp().expand(R, 2)), 1)

    def log_p(z):  # correlated Gaussian target whose mean depends on theta
        a, b = z[..., 0] - theta, z[..., 1]
        return -0.5 * (a**2 + b**2 - 1.2 * a * b) / 0.64

    return [loc, log_scale, theta], q, log_p


def _grad_stats(objective, reps=40, R=500, nonreparam=False):
    """Mean and standard error over `reps` evaluations of the batch-averaged gradient."""
    out = []
    for _ in range(reps):
        params, q, log_p = _setup(R, nonreparam)
        objective.loss(q(), log_p).loss.backward()
        out.append(torch.cat([p.grad.reshape(-1) for p in params]))
    g = torch.stack(out)
    return g.mean(0), g.std(0) / math.sqrt(reps)


def _agree(a, b, z=4.5):
    (m1, s1), (m2, s2) = a, b
    assert bool(((m1 - m2).abs() <= z * torch.sqrt(s1**2 + s2**2) + 1e-6).all()), (m1, m2, s1, s2)


@pytest.fixture(scope="module")
def elbo_reference():
    torch.manual_seed(0)
    return _grad_stats(ELBO(num_particles=1), reps=20, R=20_000)


@pytest.fixture(scope="module")
def iwae_reference():
    torch.manual_seed(0)
    return _grad_stats(IWAE(num_particles=5), reps=20, R=20_000)


@pytest.mark.parametrize(
    "objective",
    [
        ELBO(num_particles=1, analytic=False),
        ELBO(num_particles=1, gradient="stl"),
        ELBO(num_particles=4, gradient="score"),  # leave-one-out baseline
        ELBO(num_particles=4, gradient="score", analytic=False),
    ],
    ids=["reparam-mc", "stl", "score-loo", "score-loo-mc-entropy"],
)
def test_elbo_estimators_agree(objective, elbo_reference):
    torch.manual_seed(1)
    _agree(_grad_stats(objective), elbo_reference)


def test_score_with_nonreparameterizable_family(elbo_reference):
    torch.manual_seed(2)
    _agree(_grad_stats(ELBO(num_particles=3, gradient="score"), nonreparam=True), elbo_reference)
    with pytest.raises(ValueError, match="score"):
        _grad_stats(ELBO(), reps=1, R=2, nonreparam=True)


def test_score_single_particle_ema_baseline(elbo_reference):
    torch.manual_seed(3)
    obj = ELBO(num_particles=1, gradient="score")
    obj.loss(_setup(500)[1](), _setup(500)[2])  # warm the moving average
    _agree(_grad_stats(obj), elbo_reference)


@pytest.mark.parametrize(
    "objective",
    [IWAE(num_particles=5, gradient="dreg"), IWAE(num_particles=5, gradient="score")],
    ids=["dreg", "vimco"],
)
def test_iwae_estimators_agree(objective, iwae_reference):
    torch.manual_seed(4)
    _agree(_grad_stats(objective, reps=40, R=2000), iwae_reference)


def test_iwae_stl_is_biased_for_k_gt_1(iwae_reference):
    # Tucker et al. 2019: STL is biased for IWAE (the reason DReG exists). The test makes sure our
    # agreement test would notice a biased estimator.
    torch.manual_seed(5)
    m, s = _grad_stats(IWAE(num_particles=5, gradient="stl"), reps=40, R=2000)
    m0, s0 = iwae_reference
    assert bool(((m - m0).abs() > 6 * torch.sqrt(s**2 + s0**2)).any())


def test_stl_has_zero_variance_at_the_optimum():
    # Roeder et al. 2017: when q equals the target, the STL gradient is exactly zero for every draw.
    fam = MeanField(2, loc=torch.tensor([1.0, -1.0]), init_scale=1.0)
    with torch.no_grad():
        fam.log_scale.copy_(torch.tensor([math.log(0.5), math.log(2.0)]))
    target = Independent(Normal(torch.tensor([1.0, -1.0]), torch.tensor([0.5, 2.0])), 1)
    ELBO(num_particles=3, gradient="stl").loss(fam(), target.log_prob).loss.backward()
    for p in fam.parameters():
        torch.testing.assert_close(p.grad, torch.zeros_like(p.grad), atol=1e-12, rtol=0)
