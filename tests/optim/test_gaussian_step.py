"""The fused Gaussian step gives the same bound and gradients as autograd through the generic ELBO path."""

from __future__ import annotations

import pytest
import torch

from varinf.families import FullRank, MeanField, Preconditioned
from varinf.models import LogisticRegression
from varinf.models.model import Model
from varinf.objectives import ELBO
from varinf.optim.gaussian_step import fused_step

pytestmark = pytest.mark.usefixtures("float64")


class _Capture:
    """An 'optimizer' that records the gradients it is asked to apply."""

    def __init__(self, params):
        self.params = list(params)
        self.grads = None

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            p.grad = None

    def step(self):
        self.grads = [p.grad.clone() for p in self.params]


def _family(kind: str, D: int):
    g = torch.Generator().manual_seed(0)
    base = MeanField(D) if kind.startswith("mf") else FullRank(D)
    with torch.no_grad():
        for p in base.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    if kind.endswith("diag"):
        return Preconditioned(base, torch.randn(D, generator=g), 0.5 + torch.rand(D, generator=g))
    if kind.endswith("tril"):
        A = torch.tril(0.3 * torch.randn(D, D, generator=g), -1) + torch.diag(0.5 + torch.rand(D, generator=g))
        return Preconditioned(base, torch.randn(D, generator=g), A)
    return base


@pytest.mark.parametrize("kind", ["mf", "fr", "mf-diag", "fr-diag", "fr-tril"])
@pytest.mark.parametrize(("gradient", "S"), [("reparam", 1), ("reparam", 4), ("stl", 3)])
def test_fused_step_matches_autograd(kind, gradient, S):
    model = LogisticRegression.synthetic(n=200, d=4)
    fam = _family(kind, model.dim)
    obj = ELBO(num_particles=S, gradient=gradient)
    log_p = lambda u: Model.log_density(model, u)  # the generic path of the model, too
    opt = _Capture(fam.parameters())
    torch.manual_seed(3)
    info = fused_step(log_p, fam, obj, opt)
    assert info is not None and info.finite
    torch.manual_seed(3)  # the same draws on the generic path
    est = obj.loss(fam(), log_p)
    grads = torch.autograd.grad(est.loss, list(fam.parameters()))
    torch.testing.assert_close(info.bound, est.bound.to(info.bound.dtype), rtol=1e-10, atol=1e-8)
    for got, want in zip(opt.grads, grads):
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-10)


def test_fused_step_declines_what_it_does_not_cover():
    model = LogisticRegression.synthetic(n=50, d=2)
    fam = MeanField(model.dim)
    opt = _Capture(fam.parameters())
    assert fused_step(model.log_density, fam, ELBO(gradient="score"), opt) is None
    assert fused_step(model.log_density, fam, ELBO(analytic=False), opt) is None
    assert fused_step(model.log_density, fam, ELBO(beta=0.5), opt) is None


def test_logistic_regression_flat_log_density_equals_the_generic_one():
    for intercept in (True, False):
        m = LogisticRegression.synthetic(n=300, d=4, intercept=intercept)
        u = torch.randn(7, m.dim)
        torch.testing.assert_close(m.log_density(u), Model.log_density(m, u))
        torch.testing.assert_close(m.log_density(u[0]), Model.log_density(m, u[0]))


@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_logistic_regression_closed_form_score_equals_autograd(intercept, shape):
    m = LogisticRegression.synthetic(n=300, d=4, intercept=intercept, prior_scale=2.0)
    u = (2 * torch.randn(*shape, m.dim)).requires_grad_(True)
    value, score = m.log_density_and_score(u.detach())
    want = Model.log_density(m, u)
    (grad,) = torch.autograd.grad(want.sum(), u)
    assert value.shape == want.shape and score.shape == u.shape
    torch.testing.assert_close(value, want.detach())
    torch.testing.assert_close(score, grad)


def test_closed_form_score_only_for_the_models_own_log_density():
    class Redefined(LogisticRegression):
        def log_density(self, u):
            return super().log_density(u) + 1.0

    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(40, 2, generator=g), (torch.rand(40, generator=g) < 0.5).double()
    assert Redefined(X, y).log_density_and_score(torch.zeros(3)) is None
    assert Model.log_density_and_score(LogisticRegression(X, y), torch.zeros(3)) is None  # the default: autograd
    tiny = LogisticRegression(X, y, max_memory=64)  # chunked: the generic path
    assert tiny.log_density_and_score(torch.zeros(3)) is None


# (mean field under a triangular preconditioner only with STL: there the generic path has no analytic entropy and
# estimates it by Monte Carlo, a different estimator of the same bound)
@pytest.mark.parametrize(
    ("kind", "gradient", "S"),
    [
        (k, g, S)
        for k in ("mf", "fr", "mf-diag", "fr-tril")
        for g, S in (("reparam", 1), ("reparam", 4), ("stl", 1), ("stl", 3))
    ]
    + [("mf-tril", "stl", 1), ("mf-tril", "stl", 3)],
)
def test_fused_step_with_the_closed_form_score_matches_autograd(kind, gradient, S):
    """``log_p = model.log_density`` of a model with ``log_density_and_score``: no autograd at all in the
    step (a single mean-field draw on ``(D,)`` vectors), the same bound and gradients as the generic path."""
    model = LogisticRegression.synthetic(n=200, d=4)
    fam = _family(kind, model.dim)
    obj = ELBO(num_particles=S, gradient=gradient)
    opt = _Capture(fam.parameters())
    torch.manual_seed(3)
    with torch.autograd.graph.saved_tensors_hooks(_no_graph, _no_graph):  # nothing is saved for a backward pass
        info = fused_step(model.log_density, fam, obj, opt)
    assert info is not None and info.finite
    torch.manual_seed(3)
    est = obj.loss(fam(), lambda u: Model.log_density(model, u))
    grads = torch.autograd.grad(est.loss, list(fam.parameters()))
    torch.testing.assert_close(info.bound, est.bound.to(info.bound.dtype), rtol=1e-10, atol=1e-8)
    torch.testing.assert_close(info.loss, -info.bound)
    for got, want in zip(opt.grads, grads):
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-10)


def _no_graph(x):
    raise AssertionError("autograd saved a tensor in the closed-form step")
