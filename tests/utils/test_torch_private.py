"""The private torch APIs varinf relies on (``varinf.utils.torch_private``) still behave as varinf assumes.

A torch upgrade that renames or changes one of them fails here, in one place, with the API named."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Distribution, MultivariateNormal

from varinf.utils import torch_private as tp


def test_fused_adam_kernel_exists_and_takes_one_adam_step():
    assert tp.HAVE_FUSED_ADAM, "torch._fused_adam_ is gone: LeanAdam falls back to the slower foreach path"
    p, g = torch.tensor([1.0, -2.0], dtype=torch.float64), torch.tensor([0.5, 0.25], dtype=torch.float64)
    m, v, step = torch.zeros_like(p), torch.zeros_like(p), torch.ones((), dtype=torch.float32)
    tp.fused_adam_([p], [g], [m], [v], [], [step], lr=0.1, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8,
                   amsgrad=False, maximize=False, grad_scale=None, found_inf=None)  # fmt: skip
    # the first Adam step moves each coordinate by lr * sign(g) (bias-corrected m / sqrt(v) = g / |g|)
    torch.testing.assert_close(p, torch.tensor([0.9, -2.1], dtype=torch.float64))
    torch.testing.assert_close(m, 0.1 * g)
    torch.testing.assert_close(v, 0.001 * g * g)


def test_foreach_ops_act_on_every_tensor_of_a_list():
    a, b = [torch.ones(2), torch.zeros(3)], [torch.full((2,), 3.0), torch.full((3,), 1.0)]
    tp.foreach_lerp_(a, b, 0.5)
    assert torch.equal(a[0], torch.full((2,), 2.0)) and torch.equal(a[1], torch.full((3,), 0.5))
    tp.foreach_mul_(a, 2.0)
    tp.foreach_add_(a, 1.0)
    tp.foreach_addcmul_(a, b, b, 0.5)
    assert torch.equal(a[0], torch.full((2,), 9.5)) and torch.equal(a[1], torch.full((3,), 2.5))
    r = tp.foreach_sqrt(tp.foreach_div([torch.full((2,), 8.0)], 2.0))
    assert torch.equal(r[0], torch.full((2,), 2.0))
    x = [torch.zeros(2)]
    tp.foreach_addcdiv_(x, [torch.ones(2)], [torch.full((2,), 4.0)], -2.0)
    assert torch.equal(x[0], torch.full((2,), -0.5))


def test_strong_wolfe_line_search_returns_a_point_meeting_the_wolfe_conditions():
    A = torch.tensor([[3.0, 0.5], [0.5, 1.0]], dtype=torch.float64)

    def obj(x, t, d):  # f(x + t d), its gradient
        y = x + t * d
        return float(0.5 * y @ A @ y), A @ y

    x = torch.tensor([1.0, -1.0], dtype=torch.float64)
    f, g = obj(x, 0.0, torch.zeros(2, dtype=torch.float64))
    d = -g
    gtd = g.dot(d)
    f_new, g_new, t, evals = tp.strong_wolfe(obj, x, 1.0, d, f, g, gtd)
    assert evals >= 1 and t > 0
    assert f_new <= f + 1e-4 * t * float(gtd)  # sufficient decrease
    assert abs(float(g_new.dot(d))) <= 0.9 * abs(float(gtd))  # curvature (strong Wolfe)


def test_multivariate_normal_from_its_cholesky_factor_without_init():
    L = torch.tensor([[1.0, 0.0], [0.4, 0.7]])
    ref = MultivariateNormal(torch.zeros(2), scale_tril=L)
    q = MultivariateNormal.__new__(MultivariateNormal)
    q.loc = torch.zeros(2)
    tp.set_scale_tril(q, L)
    Distribution.__init__(q, torch.Size(), torch.Size([2]), validate_args=False)
    assert tp.scale_tril_of(q) is L
    x = torch.tensor([[0.3, -1.0], [1.0, 2.0]])
    torch.testing.assert_close(q.log_prob(x), ref.log_prob(x))
    torch.testing.assert_close(q.covariance_matrix, ref.covariance_matrix)


def test_tensor_version_counts_in_place_updates():
    t = torch.zeros(3)
    v0 = tp.tensor_version(t)
    t.add_(1.0)
    assert tp.tensor_version(t) == v0 + 1
    _ = t + 1.0  # out of place: no change
    assert tp.tensor_version(t) == v0 + 1


def test_tree_map_reaches_tensors_in_nested_containers():
    out = tp.tree_map(lambda x: x * 2, {"a": torch.ones(1), "b": (torch.ones(2), [torch.ones(3)])})
    assert float(out["a"]) == 2.0 and out["b"][1][0].sum().item() == 6.0


def test_validate_args_default_and_instance_flag():
    old = tp.default_validate_args()
    try:
        Distribution.set_default_validate_args(False)
        assert tp.default_validate_args() is False
        assert tp.validates(torch.distributions.Normal(0.0, 1.0)) is False
        Distribution.set_default_validate_args(True)
        assert tp.default_validate_args() is True
        assert tp.validates(torch.distributions.Normal(0.0, 1.0)) is True
    finally:
        Distribution.set_default_validate_args(old)


@pytest.mark.parametrize("a", [0.5, 4.0])
def test_standard_gamma_draws_from_gamma_a_1_with_a_generator(a):
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    x = tp.standard_gamma(torch.full((20000,), a, dtype=torch.float64), generator=g1)
    y = tp.standard_gamma(torch.full((20000,), a, dtype=torch.float64), generator=g2)
    assert torch.equal(x, y)  # the generator is used: same seed, same draws
    assert abs(x.mean().item() - a) < 5 * math.sqrt(a / 20000)  # Gamma(a, 1): mean a, variance a
