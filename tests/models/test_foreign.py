"""ForeignModel on an engine written in torch: the autograd bridge (value, gradient, finite-difference Hessian),
non-finite points, derived and generated quantities, fits, predictions, saving, ArviZ dims."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import LogNormal, MultivariateNormal, Normal

import varinf
from varinf.models import AbstractEngine, ForeignModel, ModelError, Variable

MEAN = torch.tensor([1.0, -2.0], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.8], [0.8, 2.0]], dtype=torch.float64)


class GaussianEngine(AbstractEngine):
    """``a ~ N(MEAN, COV)`` (2,), ``s ~ LogNormal(0, 0.5)`` with u = (a, log s); derived ``t = s * sum(a)``;
    generated ``y ~ N(a, 1)`` and its ``log_lik``. Rejects (log density -inf) points with |a| > ``cut``."""

    def __init__(self, cut: float = math.inf, offset: float = 0.0, hole: float = 0.0):
        self.name, self.dim, self.cut, self.hole = "gauss", 3, cut, hole
        self.variables = (
            Variable("a", (2,), dims=("a_dim_0",)),
            Variable("s", ()),
            Variable("t", (), "derived"),
            Variable("y", (2,), "generated", ("a_dim_0",)),
            Variable("log_lik", (2,), "generated"),
        )
        self.coords = {"a_dim_0": ["first", "second"]}
        self.fingerprint = {"program": "gauss", "data": str(offset)}
        self.offset = offset
        self.calls = 0

    def _lp(self, u, jacobian=True):
        a, v = u[:, :2], u[:, 2]
        lp = MultivariateNormal(MEAN + self.offset, COV).log_prob(a) + LogNormal(0.0, 0.5).log_prob(v.exp())
        lp = lp + (v if jacobian else 0.0)
        bad = (a.abs() > self.cut).any(-1) | (u.norm(dim=-1) < self.hole)
        return torch.where(bad, torch.full_like(lp, -math.inf), lp)

    def log_density_gradient(self, u):
        self.calls += 1
        assert u.dtype == torch.float64 and u.device.type == "cpu" and u.is_contiguous() and u.dim() == 2
        with torch.enable_grad():  # called inside an autograd Function's forward, where grad mode is off
            x = u.clone().requires_grad_(True)
            lp = self._lp(x)
            (g,) = torch.autograd.grad(lp.sum(), x)
        g = torch.where(torch.isfinite(lp)[:, None], g, torch.full_like(g, math.nan))
        return lp.detach(), g

    def log_density(self, u, jacobian=True):
        return self._lp(u, jacobian)

    def constrain(self, u, derived=True, seed=0):
        a, s = u[:, :2], u[:, 2].exp()
        out = {"a": a.clone(), "s": s}
        if derived:
            gen = torch.Generator().manual_seed(seed)
            y = a + torch.randn(a.shape, generator=gen, dtype=torch.float64)
            out.update(t=s * a.sum(-1), y=y, log_lik=Normal(a, 1.0).log_prob(torch.zeros_like(a)))
        return out

    def unconstrain(self, z):
        return torch.cat([z["a"].reshape(-1, 2), z["s"].reshape(-1, 1).log()], 1).double()

    def explain(self, u):
        return f"|a| > {self.cut}"

    def with_data(self, data):
        return GaussianEngine(self.cut, offset=float(data))


def exact_log_density(u):
    return GaussianEngine()._lp(u)


def test_value_gradient_and_hessian_match_autograd_of_the_same_density():
    model = ForeignModel(GaussianEngine())
    u = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    lp = model.log_density(u)
    assert torch.allclose(lp, exact_log_density(u.detach()))
    (g,) = torch.autograd.grad(lp.sum(), u)
    (g_ref,) = torch.autograd.grad(exact_log_density(u).sum(), u)
    assert torch.allclose(g, g_ref, atol=1e-12)
    x = torch.tensor([0.3, -1.2, 0.4], dtype=torch.float64)
    H = torch.autograd.functional.hessian(lambda y: model.log_density(y[None])[0], x)
    H_ref = torch.autograd.functional.hessian(lambda y: exact_log_density(y[None])[0], x)
    assert torch.allclose(H, H_ref, rtol=1e-7, atol=1e-7)


def test_hessian_vector_products_batch_draws_and_third_derivatives_raise():
    model = ForeignModel(GaussianEngine())
    u = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(model.log_density(u).sum(), u, create_graph=True)
    v = torch.randn(5, 3, dtype=torch.float64)
    (hv,) = torch.autograd.grad((g * v).sum(), u, create_graph=True)
    x = u.detach().requires_grad_(True)
    (g2,) = torch.autograd.grad(exact_log_density(x).sum(), x, create_graph=True)
    (hv_ref,) = torch.autograd.grad((g2 * v).sum(), x)
    assert torch.allclose(hv, hv_ref, rtol=1e-6, atol=1e-7)
    with pytest.raises(RuntimeError, match="third derivative"):
        torch.autograd.grad(hv.sum(), u)


def test_float32_and_leading_dimensions():
    model = ForeignModel(GaussianEngine()).float()
    u = torch.randn(2, 3, 3)
    lp, score = model.log_density_and_score(u)
    assert lp.shape == (2, 3) and lp.dtype == torch.float32 and score.shape == (2, 3, 3)
    assert torch.allclose(lp.double(), exact_log_density(u.double().reshape(-1, 3)).reshape(2, 3), atol=1e-5)
    with pytest.raises(ModelError, match="size 3"):
        model.log_density(torch.zeros(4, 2))


def test_rejected_points_are_non_finite_and_check_names_the_reason():
    model = ForeignModel(GaussianEngine(cut=5.0))
    u = torch.tensor([[0.0, 0.0, 0.0], [9.0, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    lp = model.log_density(u)
    assert torch.isfinite(lp[0]) and lp[1] == -math.inf
    (g,) = torch.autograd.grad(lp[0], u)
    assert torch.isfinite(g).all()
    model.check()  # zeros and a U(-1, 1) point are fine
    with pytest.raises(ModelError, match=r"gauss: log density is -inf at an initial point .*\|a\| > 5.0"):
        model.check(torch.tensor([7.0, 0.0, 0.0]))


def test_no_parameters_and_bad_names_are_refused():
    class Empty(GaussianEngine):
        def __init__(self):
            super().__init__()
            self.dim, self.variables = 0, (Variable("t", (), "derived"),)

    with pytest.raises(ModelError, match="no parameters"):
        ForeignModel(Empty())

    class Odd(GaussianEngine):
        def __init__(self):
            super().__init__()
            self.variables = (Variable("a-b", (2,)), Variable("s", ()))

    with pytest.raises(ModelError, match="a-b"):
        ForeignModel(Odd())


def test_draws_carry_derived_and_generated_quantities_of_the_same_draws():
    model = ForeignModel(GaussianEngine())
    res = varinf.fit(model, family="fullrank", seed=1, progress=False)
    d = res.draws(500, seed=2)
    assert set(d) == {"a", "s", "t", "y", "log_lik"} and d["a"].shape == (500, 2) and d["y"].shape == (500, 2)
    assert torch.allclose(d["t"], d["s"] * d["a"].sum(-1))
    again = res.draws(500, seed=2)
    assert all(torch.equal(d[k], again[k]) for k in d)  # the engine's RNG is seeded from torch's
    # recomputed from other tensors holding the same values: same derived quantities
    z = {"a": d["a"].clone(), "s": d["s"].clone()}
    assert torch.allclose(model.derived_quantities(z)["t"], d["t"])
    # the posterior is Gaussian in u: the fit recovers it
    assert torch.allclose(d["a"].mean(0), MEAN, atol=0.15)
    u = res.draws_unconstrained(4000, seed=3)
    assert torch.allclose(u[:, 2].std(), torch.tensor(0.5, dtype=u.dtype), atol=0.03)


def test_summary_and_arviz_use_the_engines_coords():
    pytest.importorskip("arviz")
    model = ForeignModel(GaussianEngine())
    res = varinf.fit(model, family="fullrank", seed=0, progress=False, diagnose_draws=400)
    names = [r.name for r in res.summary(n=200, seed=0).rows]
    assert names[:3] == ["a[first]", "a[second]", "s"] and "y[second]" in names
    idata = varinf.diagnostics.to_inference_data(res)
    assert list(idata.posterior["a"].coords["a_dim_0"].values) == ["first", "second"]
    assert idata.log_likelihood["log_lik"].shape == (4, 100, 2)


def test_predict_runs_the_engines_generated_quantities_on_new_data():
    model = ForeignModel(GaussianEngine())
    res = varinf.fit(model, family="fullrank", seed=0, progress=False, diagnose=False)
    pred = res.predict(num_draws=300, seed=4)
    assert set(pred.replicated) == {"y", "log_lik"} and set(pred.derived) == {"t"}
    assert pred.log_likelihood.shape == (300, 2) and pred.log_predictive_density().shape == (2,)
    assert torch.allclose(pred.mean()["y"], MEAN, atol=0.3)
    shifted = res.predict(data=10.0, num_draws=300, seed=4)
    assert torch.equal(shifted.latents["a"], pred.latents["a"])


def test_save_and_load_check_the_engines_fingerprint(tmp_path):
    model = ForeignModel(GaussianEngine())
    res = varinf.fit(model, family="meanfield", seed=0, progress=False, diagnose=False)
    path = res.save(tmp_path / "fit")
    back = varinf.load(path, ForeignModel(GaussianEngine()))
    u = torch.randn(3, 3, dtype=torch.float64)
    assert torch.allclose(back.family().log_prob(u), res.family().log_prob(u))
    with pytest.raises(ValueError, match=r"foreign model differs .*data"):
        varinf.load(path, ForeignModel(GaussianEngine(offset=1.0)))


def test_rejections_during_a_fit_are_survived():
    """A region the engine rejects (log density -inf, NaN gradient) is handled like a torch model's NaN."""
    model = ForeignModel(GaussianEngine(cut=4.0))
    for method in ("auto", "advi"):
        res = varinf.fit(model, method=method, seed=0, progress=False, diagnose=False, max_steps=3000)
        assert torch.allclose(res.draws(2000, seed=0)["a"].mean(0), MEAN, atol=0.3)


def test_a_program_that_rejects_zero_starts_elsewhere():
    """Stan's rule: zero, else the first accepted U(-2, 2) point (an ODE model can reject zero by rounding)."""
    model = ForeignModel(GaussianEngine(hole=0.3))
    with pytest.raises(ModelError, match="at zero"):
        model.check(torch.zeros(3))
    res = varinf.fit(model, seed=0, progress=False, diagnose=False)
    assert torch.allclose(res.draws(4000, seed=0)["a"].mean(0), MEAN, atol=0.15)


def test_hessian_finite_differences_are_accurate_far_from_zero():
    """The step scales with |u|: a mode at |u| ~ 1e3 still gets a Hessian accurate to ~1e-5 relative."""
    model = ForeignModel(GaussianEngine(offset=1000.0))
    x = torch.tensor([1001.0, 998.0, 0.0], dtype=torch.float64)
    H = torch.autograd.functional.hessian(lambda y: model.log_density(y[None])[0], x)
    H_ref = torch.autograd.functional.hessian(lambda y: GaussianEngine(offset=1000.0)._lp(y[None])[0], x)
    assert torch.allclose(H, H_ref, rtol=1e-5, atol=1e-5)


def test_unconstrain_round_trip_and_missing_values():
    model = ForeignModel(GaussianEngine())
    u = torch.randn(6, 3, dtype=torch.float64)
    z = model.constrained(u)
    assert torch.allclose(model.unconstrain(z), u)
    z, ladj = model.constrain(u)
    assert torch.allclose(ladj, u[:, 2])
    assert torch.allclose(model.log_joint(**z), GaussianEngine()._lp(u, jacobian=False))
    with pytest.raises(ModelError, match="missing"):
        model.unconstrain({"a": z["a"]})
