"""Laplace initialization: the mode and Hessian of a Gaussian target are exact."""

from __future__ import annotations

import pytest
import torch

import varinf
from varinf.models import LinearRegression
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


def test_lbfgs_path_takes_torch_lbfgs_iterates():
    # laplace._LBFGS transcribes torch.optim.LBFGS (strong Wolfe, one iteration per step) without building an
    # Optimizer (which imports torch._dynamo); the recorded path must be torch's, iterate for iterate
    from varinf.optim.lbfgs import lbfgs_path

    A = torch.tensor([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]], dtype=torch.float64)

    def log_density(u):  # a skewed, non-quadratic bowl
        return -0.5 * ((u @ A) * u).sum(-1) - 0.1 * (u[..., 0] - 1).pow(4) + u[..., 2]

    u0 = torch.tensor([2.0, -1.5, 0.5], dtype=torch.float64)
    path = lbfgs_path(log_density, u0, max_iter=50, tol_rel_obj=0.0)
    u = u0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([u], lr=1.0, max_iter=1, max_eval=26, tolerance_grad=1e-7, tolerance_change=0.0,
                            history_size=20, line_search_fn="strong_wolfe")  # fmt: skip

    def closure():
        opt.zero_grad()
        loss = -log_density(u[None])[0]
        loss.backward()
        return loss

    xs = [u.detach().clone()]
    for _ in range(len(path.x) - 1):
        opt.step(closure)
        xs.append(u.detach().clone())
    assert len(path.x) > 5
    torch.testing.assert_close(path.x, torch.stack(xs), rtol=1e-12, atol=1e-12)


def test_laplace_start_of_a_chunked_model_equals_the_one_piece_one(float64):
    """With the likelihood summed over >= 3 row chunks the mode and Hessian are those of the one-piece sum
    (a first-order-only chunked sum used to drop the likelihood's curvature: H = I, the prior's)."""
    model = LinearRegression.synthetic(n=2000, d=4, seed=3)
    X = model.data["X"]
    exact = X.T @ X + torch.eye(4)  # the posterior precision (unit noise and prior scales)
    whole = laplace_init(model.log_density, torch.zeros(model.dim))
    model.max_memory = 8 * 8 * 2 * 600  # one draw with gradients: 600 rows per chunk, 4 chunks
    chunked = laplace_init(model.log_density, torch.zeros(model.dim))
    assert whole.ok and chunked.ok, (whole.reason, chunked.reason)
    torch.testing.assert_close(whole.precision, exact, rtol=1e-10, atol=1e-8)
    torch.testing.assert_close(chunked.precision, whole.precision, rtol=1e-10, atol=1e-8)
    torch.testing.assert_close(chunked.mode, whole.mode, rtol=0, atol=1e-8)


@pytest.mark.filterwarnings("ignore::varinf.optim.ConvergenceWarning")
def test_fit_with_a_tiny_memory_budget_matches_the_default(float64):
    """ADVI from the Laplace start on a model whose likelihood is summed in >= 4 row chunks gives the default
    (one-chunk) fit: same means and sds. With the likelihood's curvature dropped from the start's Hessian
    the start was the prior's scale (q's sds 2-5x too wide after 300 steps; means near -1e11 at 24k rows)."""

    def draws(max_memory):
        model = LinearRegression.synthetic(n=4000, d=3, seed=4)
        if max_memory is not None:
            model.max_memory = max_memory
        res = varinf.fit(model, method="advi", diagnose=False, progress=False, seed=0, max_steps=300)
        return res.draws_unconstrained(2000, seed=1), model

    default, model = draws(None)
    tiny, _ = draws(8 * 8 * 2 * 1000)  # 1000 rows per chunk for one draw (fewer for more): >= 4 chunks
    X, y = model.data["X"], model.data["y"]
    cov = torch.linalg.inv(X.T @ X + torch.eye(3))
    sd = cov.diagonal().sqrt()
    assert ((default.mean(0) - cov @ X.T @ y).abs() < 0.2 * sd).all()
    torch.testing.assert_close(tiny.mean(0), default.mean(0), rtol=0, atol=1e-6 * float(sd.min()))
    torch.testing.assert_close(tiny.std(0), default.std(0), rtol=1e-6, atol=0)
