"""Every supported support: biject_to round trip, support membership, log|det J| vs autograd."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import biject_to, constraints

from varinf.models import as_constraint

pytestmark = pytest.mark.usefixtures("float64")

# (support, event shape, how to pick the free coordinates of the output for a square Jacobian)
CASES = [
    ("real", (3,), None),
    ("positive", (3,), None),
    ("unit_interval", (3,), None),
    (("interval", -2.0, 5.0), (3,), None),
    (("greater_than", 1.5), (3,), None),
    (("less_than", -1.0), (3,), None),
    ("ordered", (4,), None),
    ("positive_ordered", (4,), None),
    ("simplex", (4,), lambda y: y[..., :-1]),  # the last coordinate is determined by the others
    ("lower_cholesky", (3, 3), lambda y: y[torch.tril_indices(3, 3).unbind()]),
    ("corr_cholesky", (3, 3), lambda y: y[torch.tril_indices(3, 3, -1).unbind()]),
    ("positive_definite", (3, 3), lambda y: y[torch.tril_indices(3, 3).unbind()]),
]


def _ids(case):
    s = case[0]
    return s if isinstance(s, str) else s[0]


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_round_trip_and_support(case):
    support, shape, _ = case
    c = as_constraint(support)
    t = biject_to(c)
    u = torch.randn(5, *t.inverse_shape(torch.Size(shape)))
    y = t(u)
    assert y.shape == (5, *shape)
    assert bool(c.check(y).all())
    torch.testing.assert_close(t(t.inv(y)), y, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_log_det_matches_autograd(case):
    support, shape, free = case
    t = biject_to(as_constraint(support))
    u = torch.randn(*t.inverse_shape(torch.Size(shape)))
    free = free or (lambda y: y)

    def f(x):
        return free(t(x.reshape(u.shape))).reshape(-1)

    J = torch.autograd.functional.jacobian(f, u.reshape(-1))
    assert J.shape[0] == J.shape[1], "free coordinates must make the Jacobian square"
    expected = torch.linalg.slogdet(J).logabsdet
    got = t.log_abs_det_jacobian(u, t(u))
    got = got.sum() if got.dim() > 0 else got
    torch.testing.assert_close(got, expected, atol=1e-8, rtol=1e-6)


def test_unknown_support_message():
    with pytest.raises(ValueError, match="unknown support"):
        as_constraint("postive")


def test_constraint_objects_pass_through():
    assert as_constraint(constraints.positive) is constraints.positive


def test_positive_ordered_is_finite_where_exp_of_ordered_overflows():
    from varinf.models.constraints import PositiveOrderedTransform

    x = torch.tensor([-3.6, 8.5])  # exp(-3.6 + exp(8.5)) overflows float32 (and float64)
    y = PositiveOrderedTransform()(x)
    assert torch.isfinite(y).all() and y[0] > 0 and y[1] > y[0]
    torch.testing.assert_close(PositiveOrderedTransform().inv(y), x)
