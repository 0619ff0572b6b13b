"""Posterior predictive (exact for the conjugate normal model), derived quantities in draws and summaries,
and save/load: round trip, model fingerprint checks, corrupt files, no pickle."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal

import varinf
from varinf.families import LowRank
from varinf.models import LinearRegression, NormalNormal
from varinf.utils import SafetensorsError as CheckpointError

pytestmark = pytest.mark.usefixtures("float64")


@pytest.fixture(scope="module")
def normal_fit(float64):
    g = torch.Generator().manual_seed(0)
    model = NormalNormal(1.5 + torch.randn(30, generator=g), sigma=1.0, prior_scale=10.0)
    return varinf.fit(model, progress=False, tol_rel_obj=None, max_steps=2000, lr=0.05, diagnose_draws=500)


def test_predictive_density_of_new_rows_matches_the_exact_posterior_predictive(normal_fit):
    model = normal_fit.model
    post = model.exact_posterior()
    y_new = torch.tensor([-1.0, 1.5, 4.0])
    pred = normal_fit.predict(data={"y": y_new}, num_draws=20_000)
    exact = Normal(post.mean, (post.variance + model.sigma**2).sqrt()).log_prob(y_new)  # N(m_n, s_n^2 + sigma^2)
    torch.testing.assert_close(pred.log_predictive_density(), exact.double(), atol=0.02, rtol=0)
    rep = pred.replicated["y"]
    assert rep.shape == (20_000, 3)
    torch.testing.assert_close(rep.mean(0), post.mean.expand(3).double(), atol=0.05, rtol=0)
    torch.testing.assert_close(rep.std(0), (post.variance + 1).sqrt().expand(3).double(), atol=0.03, rtol=0)
    lo, hi = pred.interval(0.9)["y"]
    assert bool((lo < pred.mean()["y"]).all() and (pred.mean()["y"] < hi).all())


def test_predict_new_covariates_without_observations():
    model = LinearRegression.synthetic(n=200, d=2, seed=1)
    res = varinf.fit(model, "fullrank", progress=False, diagnose=False, tol_rel_obj=None, max_steps=1000, lr=0.05)
    X_new = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    pred = res.predict(data={"X": X_new}, num_draws=4000, seed=3)
    assert pred.log_likelihood is None and pred.replicated["y"].shape == (4000, 2)
    mean = model.exact_posterior().mean.double()
    torch.testing.assert_close(pred.mean()["y"], (X_new.double() @ mean), atol=0.1, rtol=0)
    again = res.predict(data={"X": X_new}, num_draws=4000, seed=3)
    assert torch.equal(again.replicated["y"], pred.replicated["y"])  # seeded
    fresh = [res.predict(data={"X": X_new}, num_draws=10).replicated["y"] for _ in range(2)]
    assert not torch.equal(fresh[0], fresh[1])  # no seed: fresh randomness on every call, like res.draws
    with pytest.raises(varinf.ModelError, match=r"data\['X'\] has 2 rows but data\['z'\] has 3"):
        res.predict(data={"z": torch.zeros(3), "X": X_new})


def test_derived_quantities_in_draws_and_summary():
    res = varinf.fit(varinf.load_example("eight_schools"), progress=False, diagnose=False, max_steps=300,
                     tol_rel_obj=None, lr=0.05)  # fmt: skip
    d = res.draws(100)
    torch.testing.assert_close(d["theta"], d["mu"][:, None] + d["tau"][:, None] * d["theta_tilde"])
    names = [r.name for r in res.summary(n=200).rows]
    assert "theta[7]" in names and names.index("theta[0]") > names.index("theta_tilde[7]")


def test_save_load_round_trip(normal_fit, tmp_path):
    path = normal_fit.save(tmp_path / "fit")
    assert path.name == "fit.safetensors" and b"pickle" not in path.read_bytes()[:200]
    back = varinf.load(path, normal_fit.model)
    for k, v in normal_fit.family.state_dict().items():
        assert torch.equal(back.family.state_dict()[k], v)
    assert back.num_steps == normal_fit.num_steps and back.converged == normal_fit.converged
    assert torch.equal(back.elbo_trace, normal_fit.elbo_trace) and back.objective == normal_fit.objective
    assert torch.equal(back.draws(50, seed=1)["mu"], normal_fit.draws(50, seed=1)["mu"])
    again = varinf.load(path, normal_fit.model, diagnose=True, diagnose_draws=500)
    assert abs(again.diagnostics.khat - normal_fit.diagnostics.khat) < 1e-9


def test_load_checks_the_model_and_the_file(normal_fit, tmp_path):
    path = normal_fit.save(tmp_path / "fit.safetensors")
    other = NormalNormal(normal_fit.model.data["y"] + 0.1, sigma=1.0, prior_scale=10.0)
    with pytest.raises(CheckpointError, match=r"another model than 'normal_normal': data\['y'\] has other values"):
        varinf.load(path, other)
    with pytest.raises(CheckpointError, match=r"30 data rows were fitted, the model has 29"):
        varinf.load(path, NormalNormal(normal_fit.model.data["y"][:29]))
    with pytest.raises(CheckpointError, match="another model"):
        varinf.load(path)  # the built-in normal_normal example has other data
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    (tmp_path / "bad.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        varinf.load(tmp_path / "bad.safetensors", normal_fit.model)


def test_example_loads_by_name_and_lowrank_kwargs(tmp_path):
    model = varinf.load_example("linear_regression")
    res = varinf.fit(model, "lowrank", rank=2, progress=False, diagnose=False, max_steps=200, tol_rel_obj=None)
    back = varinf.load(res.save(tmp_path / "lr"))
    assert isinstance(back.family.base, LowRank) and back.family.base.rank == 2
    assert torch.equal(back.posterior().mean, res.posterior().mean)
    custom = varinf.fit(
        model, LowRank(model.dim, rank=1), progress=False, diagnose=False, max_steps=50, tol_rel_obj=None
    )
    path = custom.save(tmp_path / "custom")
    assert math.isfinite(varinf.load(path, model, family=LowRank(model.dim, rank=1)).elbo(100)[0])


@pytest.mark.parametrize(
    "method,family", [("bam", "fullrank"), ("bam", "lowrank"), ("pathfinder", "auto"), ("auto", "meanfield")]
)
def test_save_load_round_trip_every_method(method, family, tmp_path):
    # Pathfinder's q is a mixture of fixed diagonal-plus-low-rank Gaussians; auto's mean-field is preconditioned
    # (its cached log|A| must follow the loaded A); route and report must survive so summaries match
    model = varinf.load_example("linear_regression")
    res = varinf.fit(model, family, method=method, seed=0, progress=False, diagnose_draws=500)
    back = varinf.load(res.save(tmp_path / "fit"), diagnose=True, diagnose_draws=500)
    assert (back.method, back.route, back.route_reason, back.report) == (
        res.method, res.route, res.route_reason, res.report)  # fmt: skip
    assert (back.grad_evals, back.density_evals) == (res.grad_evals, res.density_evals)
    a, b = res.draws(200, seed=1), back.draws(200, seed=1)
    for k in a:
        torch.testing.assert_close(b[k], a[k])
    assert back.diagnostics.khat == pytest.approx(res.diagnostics.khat, abs=1e-6)  # -inf when q is exact
    s, t = res.summary(n=500, seed=2).to_dict(), back.summary(n=500, seed=2).to_dict()
    assert list(s) == list(t)
    for name in s:
        assert t[name] == pytest.approx(s[name], rel=1e-6, abs=1e-9)
