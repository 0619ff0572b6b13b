"""The Stan bridge on three tiny programs: exact posteriors and evidence, Stan vs the same model in torch,
constrained types and layouts, rejections, generated quantities, predictions, saving, ArviZ, errors."""

from __future__ import annotations

import math
import threading

import pytest
import torch

import varinf
from varinf.models import EightSchools, ModelError

from .conftest import PROGRAMS

Y = [0, 1, 0, 0, 0, 0, 0, 0, 0, 1]


def _beta_posterior():
    s, n = sum(Y), len(Y)
    return torch.distributions.Beta(2.0 + s, 2.0 + n - s)


def _log_evidence() -> float:
    s, n = sum(Y), len(Y)
    lbeta = lambda a, b: math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    return lbeta(2 + s, 2 + n - s) - lbeta(2, 2)


def test_log_density_is_the_full_target_with_the_jacobian(bernoulli):
    u = torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None]
    theta = torch.sigmoid(u[:, 0])
    s, n = sum(Y), len(Y)
    prior = torch.distributions.Beta(2.0, 2.0).log_prob(theta)
    expected = prior + s * theta.log() + (n - s) * torch.log1p(-theta) + torch.log(theta * (1 - theta))
    x = u.clone().requires_grad_(True)
    lp = bernoulli.log_density(x)
    assert torch.allclose(lp, expected, atol=1e-12)
    (g,) = torch.autograd.grad(lp.sum(), x)
    y = u.clone().requires_grad_(True)
    t = torch.sigmoid(y[:, 0])
    ref = (
        torch.distributions.Beta(2.0, 2.0).log_prob(t)
        + s * t.log()
        + (n - s) * torch.log1p(-t)
        + torch.log(t * (1 - t))
    )
    (g_ref,) = torch.autograd.grad(ref.sum(), y)
    assert torch.allclose(g, g_ref, atol=1e-10)


def test_exact_posterior_and_evidence(bernoulli):
    res = varinf.fit(bernoulli, seed=0, progress=False)
    theta = res.draws(4000, seed=1)["theta"]
    post = _beta_posterior()
    assert abs(theta.mean().item() - post.mean.item()) < 0.1 * post.stddev.item()
    assert abs(theta.std().item() / post.stddev.item() - 1) < 0.1
    ev = res.diagnostics.evidence or res.diagnostics.log_evidence
    assert abs(ev.estimate - _log_evidence()) < 0.02
    for method in ("bridge", "ais"):
        est = varinf.evidence(res, method=method, budget=4000, seed=0)
        assert abs(est.estimate - _log_evidence()) < max(4 * est.se, 0.03), (method, est)


def test_stan_and_torch_eight_schools_agree(eight_schools):
    torch_model = EightSchools().double()
    assert eight_schools.dim == torch_model.dim == 10
    u = torch.randn(20, 10, dtype=torch.float64)
    diff = torch_model.log_density(u) - eight_schools.log_density(u)
    assert torch.allclose(diff, torch.full_like(diff, math.log(2.0)), atol=1e-10)  # the half-Cauchy's log 2
    x = u[:1].clone().requires_grad_(True)
    (g_stan,) = torch.autograd.grad(eight_schools.log_density(x).sum(), x)
    (g_torch,) = torch.autograd.grad(torch_model.log_density(x).sum(), x)
    assert torch.allclose(g_stan, g_torch, atol=1e-10)
    H_stan = torch.autograd.functional.hessian(lambda y: eight_schools.log_density(y[None])[0], u[0])
    H_torch = torch.autograd.functional.hessian(lambda y: torch_model.log_density(y[None])[0], u[0])
    assert torch.allclose(H_stan, H_torch, rtol=1e-6, atol=1e-6)
    fits = [
        varinf.fit(m, family="fullrank", seed=3, progress=False, diagnose=False) for m in (eight_schools, torch_model)
    ]
    a, b = (f.draws(20000, seed=4) for f in fits)
    for k in ("mu", "theta"):
        sd = b[k].std(0)
        assert ((a[k].mean(0) - b[k].mean(0)).abs() / sd).max() < 0.1
        assert ((a[k].std(0) / sd) - 1).abs().max() < 0.1


def test_layout_of_constrained_types_and_round_trip(constrained):
    m = constrained
    assert m.dim == 2 + 2 + 3 + 1 + 6
    assert {lat.name: lat.shape for lat in m.latents} == {"p": (3,), "o": (2,), "L": (3, 3), "s": (), "B": (2, 3)}
    u = torch.randn(50, m.dim, dtype=torch.float64)
    z = m.constrained(u)
    assert torch.allclose(z["p"].sum(-1), torch.ones(50, dtype=torch.float64))
    assert (z["o"][:, 1] > z["o"][:, 0]).all() and (z["s"] > 0).all()
    L = z["L"]
    assert torch.allclose(L.triu(1), torch.zeros_like(L))
    assert torch.allclose((L @ L.transpose(-1, -2)).diagonal(dim1=-2, dim2=-1), torch.ones(50, 3, dtype=torch.float64))
    assert torch.allclose(m.unconstrain(z), u, atol=1e-8)
    d = m.derived_quantities(z)
    assert torch.allclose(d["total"], torch.ones(50, dtype=torch.float64))
    assert d["z"].shape == (50, 2) and torch.equal(d["z"][:, 0], z["s"]) and torch.equal(d["z"][:, 1], z["o"][:, 0])
    # Stan's flat columns: column-major within a matrix, 1-based names
    cols = m.columns({**z, **d})
    names = [c for c in cols if c.startswith("B[")]
    assert names == ["B[1,1]", "B[2,1]", "B[1,2]", "B[2,2]", "B[1,3]", "B[2,3]"]
    assert torch.equal(cols["B[2,1]"], z["B"][:, 1, 0]) and torch.equal(cols["B[1,3]"], z["B"][:, 0, 2])
    assert m.element_names("B", (2, 3))[:2] == ["B[1,1]", "B[1,2]"]  # summaries: row-major, numbered from 1
    _, ladj = m.constrain(u[:3])
    lp_nojac = m.log_joint(**m.constrained(u[:3]))
    assert torch.allclose(m.log_density(u[:3]), lp_nojac + ladj, atol=1e-9)


def test_transformed_data_rng_follows_the_seed(constrained):
    from varinf import StanModel

    u = torch.zeros(1, constrained.dim, dtype=torch.float64)
    first = constrained.derived_quantities(constrained.constrained(u))["shifted"]
    again = StanModel(PROGRAMS / "constrained.stan", {"K": 3, "alpha": [2.0, 3.0, 4.0]}, progress=False)
    other = StanModel(PROGRAMS / "constrained.stan", {"K": 3, "alpha": [2.0, 3.0, 4.0]}, seed=1, progress=False)
    assert torch.equal(again.derived_quantities(again.constrained(u))["shifted"], first)
    assert not torch.equal(other.derived_quantities(other.constrained(u))["shifted"], first)


def test_reject_is_a_non_finite_point_and_named_at_the_start(constrained):
    u = torch.zeros(2, constrained.dim, dtype=torch.float64)
    s_index = 2 + 2 + 3  # the unconstrained log s
    u[1, s_index] = math.log(30.0)
    x = u.clone().requires_grad_(True)
    lp = constrained.log_density(x)
    assert torch.isfinite(lp[0]) and lp[1] == -math.inf
    (g,) = torch.autograd.grad(lp[0], x)
    assert torch.isfinite(g).all()
    _, score = constrained.log_density_and_score(u)
    assert torch.isnan(score[1]).all() and torch.isfinite(score[0]).all()
    with pytest.raises(ModelError, match="s is too large"):
        constrained.check(u[1])


def test_fits_every_method_on_constrained_types(constrained):
    for method in ("auto", "pathfinder", "bam", "advi"):
        res = varinf.fit(constrained, method=method, seed=0, progress=False, diagnose_draws=500, max_steps=2000)
        z = res.draws(200, seed=0)
        assert torch.isfinite(z["p"]).all() and z["L"].shape == (200, 3, 3)
        assert abs(z["p"].mean(0)[0].item() - 2 / 9) < 0.05  # Dirichlet(2, 3, 4) marginal mean


def test_generated_quantities_draws_predict_and_arviz(bernoulli, tmp_path):
    res = varinf.fit(bernoulli, seed=0, progress=False)
    d = res.draws(300, seed=5)
    assert d["y_rep"].shape == (300, 10) and set(d["y_rep"].unique().tolist()) <= {0.0, 1.0}
    again = res.draws(300, seed=5)
    assert torch.equal(d["y_rep"], again["y_rep"])  # generated quantities follow the seed
    pred = res.predict(num_draws=400, seed=1)
    assert pred.replicated["y_rep"].shape == (400, 10) and pred.log_likelihood.shape == (400, 10)
    theta = pred.latents["theta"]
    assert torch.allclose(pred.mean()["y_rep"], theta.mean().expand(10), atol=0.12)
    new = res.predict(data={"N": 3, "y": [1, 1, 1]}, num_draws=400, seed=1)
    assert new.replicated["y_rep"].shape == (400, 3) and torch.equal(new.latents["theta"], theta)
    az = pytest.importorskip("arviz")
    idata = varinf.diagnostics.to_inference_data(res)
    assert idata.log_likelihood["log_lik"].shape == (1, 4000, 10)
    assert list(idata.posterior["y_rep"].coords["y_rep_dim_0"].values) == list(range(1, 11))
    loo = az.loo(idata)
    assert math.isfinite(float(loo.elpd_loo))


def test_save_and_load(bernoulli, tmp_path):
    from varinf import StanModel

    res = varinf.fit(bernoulli, seed=0, progress=False, diagnose=False)
    path = res.save(tmp_path / "fit")
    back = varinf.load(path, StanModel(PROGRAMS / "bernoulli.stan", PROGRAMS / "bernoulli.json", progress=False))
    assert torch.allclose(back.draws(100, seed=0)["theta"], res.draws(100, seed=0)["theta"])
    other = StanModel(PROGRAMS / "bernoulli.stan", {"N": 2, "y": [1, 1]}, progress=False)
    with pytest.raises(ValueError, match="differs \\(data\\)"):
        varinf.load(path, other)


def test_batched_calls_from_several_threads(eight_schools):
    """ctypes releases the GIL: two threads evaluate gradients at once, each on its own autodiff stack."""
    u = torch.randn(200, 10, dtype=torch.float64)
    expected = eight_schools.engine.log_density_gradient(u)
    results = [None, None]

    def work(i):
        results[i] = eight_schools.engine.log_density_gradient(u)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for lp, g in results:
        assert torch.equal(lp, expected[0]) and torch.equal(g, expected[1])


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"y": Y}, r"data block: variable does not exist.*variable name=N.*fields missing: N"),
        ({"N": 10, "y": Y[:7]}, r"variable name=y.*dims declared=\(10\); dims found=\(7\)"),
        ({"N": 10, "y": [*Y[:9], 2]}, r"y\[10\] is 2, but must be less than or equal to 1"),
        ({"N": 10, "y": [*Y[:9], 0.5]}, r"'y' is declared int but holds 0.5"),
        ({"N": 10, "y": [*Y[:9], float("nan")]}, r"'y' has a non-finite value"),
        ({"N": 10, "y": "ten"}, r"'y' holds 'ten', not a number"),
    ],
)
def test_data_that_do_not_match_the_data_block(bernoulli, data, match):
    from varinf import StanModel

    with pytest.raises(ValueError, match=match) as e:
        StanModel(PROGRAMS / "bernoulli.stan", data, progress=False)
    assert "\n" not in str(e.value)


def test_integral_floats_are_accepted_for_int_data(bernoulli):
    from varinf import StanModel

    m = StanModel(PROGRAMS / "bernoulli.stan", {"N": 10.0, "y": [float(v) for v in Y]}, progress=False)
    u = torch.zeros(1, 1, dtype=torch.float64)
    assert torch.equal(m.log_density(u), bernoulli.log_density(u))


def test_cli_fits_a_stan_program(bernoulli, tmp_path):
    import json

    from varinf.cli.main import main

    out = tmp_path / "out"
    rc = main(["fit", str(PROGRAMS / "bernoulli.stan"), "--data", str(PROGRAMS / "bernoulli.json"), "--quiet",
               "-o", str(out), "--seed", "1"])  # fmt: skip
    assert rc == 0
    record = json.loads((out / "summary.json").read_text())
    post = _beta_posterior()
    assert abs(record["posterior"]["theta"]["mean"] - post.mean.item()) < 0.1 * post.stddev.item()
    assert "y_rep[1]" in record["posterior"] and (out / "fit.safetensors").is_file()


def test_cli_refuses_data_for_other_targets(capsys):
    from varinf.cli.main import main

    assert main(["fit", "eight_schools", "--data", str(PROGRAMS / "bernoulli.json")]) == 1
    assert "--data is for Stan programs" in capsys.readouterr().err
