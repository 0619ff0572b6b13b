"""Laplace initialization: the mode and Hessian of a Gaussian target are exact."""

from __future__ import annotations

import torch

from varinf.optim.laplace import laplace_init


def _gaussian(mean: torch.Tensor, precision: torch.Tensor):
    def log_density(u):  # (1, D) -> (1,)
        d = u - mean
        return -0.5 * torch.einsum("si,ij,sj->s", d, precision, d)

    return log_density


def test_mode_and_precision_of_a_gaussian(float64):
    g = torch.Generator().manual_seed(0)
    A = torch.randn(5, 5, generator=g)
    precision = A @ A.T + 0.5 * torch.eye(5)
    mean = torch.randn(5, generator=g) * 3
    r = laplace_init(_gaussian(mean, precision), torch.zeros(5))
    assert r.ok, r.reason
    torch.testing.assert_close(r.mode, mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(r.precision, precision, atol=1e-8, rtol=1e-8)


def test_restarts_finish_what_one_lbfgs_round_leaves(float64):
    """An ill-conditioned target that one short L-BFGS round (max_eval = 1.25 max_iter) does not finish."""
    scales = torch.logspace(-3, 3, 8)
    precision = torch.diag(1 / scales**2)
    mean = torch.linspace(-2, 2, 8) * scales
    target = _gaussian(mean, precision)
    one_round = laplace_init(target, torch.zeros(8), max_iter=4, restarts=0)
    assert not one_round.ok and "stationary" in one_round.reason
    restarted = laplace_init(target, torch.zeros(8), max_iter=4, restarts=50)
    assert restarted.ok, restarted.reason
    torch.testing.assert_close(restarted.mode / scales, mean / scales, atol=1e-3, rtol=0)


def test_no_mode_is_reported_not_raised(float64):
    def funnel_like(u):  # grows without bound as u[0] -> -inf
        return -u[..., 0] - 0.5 * u[..., 1] ** 2

    r = laplace_init(funnel_like, torch.zeros(2))
    assert not r.ok and r.reason


def test_extra_starts_find_the_higher_of_two_modes(float64):
    """A two-bump density whose lower bump is downhill of zero: the extra U(-2, 2) starts find the other."""

    def two_bumps(u):  # (1, 1) -> (1,): bumps at +1.5 (height 0) and -1.5 (height 3), separated at 0.3
        x = u[..., 0]
        return torch.logaddexp(-8 * (x - 1.5) ** 2, 3 - 8 * (x + 1.5) ** 2)

    u0 = torch.tensor([0.5])
    single = laplace_init(two_bumps, u0)
    assert single.ok and abs(single.mode.item() - 1.5) < 1e-3
    multi = laplace_init(two_bumps, u0, extra_starts=8, generator=torch.Generator().manual_seed(0))
    assert multi.ok and abs(multi.mode.item() + 1.5) < 1e-3
