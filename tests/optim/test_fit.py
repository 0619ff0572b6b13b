"""fit: recovers exact conjugate posteriors, ELBO ≤ log p(x), convergence, averaging, recovery, seeds."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.distributions import Normal

from varinf import ELBO, IWAE, ConvergenceWarning, FitError, Latent, Model, fit
from varinf.families import FullRank, MeanField
from varinf.models import LinearRegression, LogisticRegression, NormalNormal

pytestmark = pytest.mark.usefixtures("float64")


def _normal_normal():
    g = torch.Generator().manual_seed(0)
    return NormalNormal(1.5 + torch.randn(20, generator=g), sigma=1.0, prior_scale=10.0)


def test_meanfield_recovers_normal_normal_posterior():
    m = _normal_normal()
    res = fit(m, "meanfield", max_steps=3000, lr=0.05, tol_rel_obj=None, progress=False)
    post = m.exact_posterior()
    q = res.posterior()
    # q is the exact family here; averaged iterates land within a few hundredths of a posterior sd
    assert abs(q.mean.item() - post.mean.item()) < 0.05 * post.stddev.item()
    assert abs(q.stddev.item() / post.stddev.item() - 1) < 0.05
    elbo, se = res.elbo(20_000)
    log_z = m.exact_log_evidence()
    assert elbo <= log_z + 3 * se
    assert log_z - elbo < 0.01  # KL(q || posterior) is nearly zero


def test_meanfield_on_independent_regression_posterior():
    # orthogonal design: the posterior covariance is diagonal, so mean-field is exact
    n, d = 64, 3
    X = torch.linalg.qr(torch.randn(n, d, generator=torch.Generator().manual_seed(1)))[0] * 4.0
    y = X @ torch.tensor([1.0, -2.0, 0.5]) + torch.randn(n, generator=torch.Generator().manual_seed(2))
    m = LinearRegression(X, y, noise_scale=1.0, prior_scale=2.0)
    res = fit(m, "meanfield", ELBO(num_particles=10), max_steps=2000, lr=0.02, tol_rel_obj=None, progress=False)
    post = m.exact_posterior()
    q = res.posterior()
    sd = post.stddev
    assert bool(((q.mean - post.mean).abs() < 0.05 * sd).all())
    assert bool(((q.stddev / sd - 1).abs() < 0.05).all())


def test_fullrank_recovers_correlated_covariance_and_meanfield_does_not():
    m = LinearRegression.synthetic(n=50, d=3, seed=3, correlated=True)
    post = m.exact_posterior()
    log_z = m.exact_log_evidence()
    full = fit(m, "fullrank", ELBO(num_particles=10), max_steps=3000, lr=0.02, tol_rel_obj=None, progress=False)
    q = full.posterior()
    torch.testing.assert_close(q.mean, post.mean, atol=0.1 * post.stddev.min().item(), rtol=0)
    cov_tol = 0.1 * post.variance.max().item()
    torch.testing.assert_close(q.covariance_matrix, post.covariance_matrix, atol=cov_tol, rtol=0)
    assert bool(((q.stddev / post.stddev - 1).abs() < 0.05).all())
    mf = fit(m, "meanfield", ELBO(num_particles=10), max_steps=2000, lr=0.02, tol_rel_obj=None, progress=False)
    e_full, s_full = full.elbo(20_000)
    e_mf, s_mf = mf.elbo(20_000)
    # both bound log p(x); the exact family closes the gap, mean-field cannot (it underestimates variance)
    assert e_mf <= log_z + 3 * s_mf and e_full <= log_z + 3 * s_full
    assert log_z - e_full < 0.02 < log_z - e_mf
    assert bool((mf.posterior().stddev < post.stddev).all())


def test_elbo_approaches_log_evidence_over_training():
    m = LinearRegression.synthetic(n=30, d=2, seed=4)
    res = fit(m, "fullrank", ELBO(num_particles=10), max_steps=1500, lr=0.02, tol_rel_obj=None, average=0.0,
              progress=False, window=100, init="zeros")  # fmt: skip
    gaps = [m.exact_log_evidence() - w for w in res.window_means]
    assert all(g > -0.05 for g in gaps)  # window means of an unbiased ELBO estimate stay below log p(x)
    assert gaps[0] > 1.0 and gaps[-1] < 0.05


def test_iwae_objective_fits_too():
    m = _normal_normal()
    # DReG keeps the signal-to-noise ratio of q's gradient from decaying with k (Rainforth et al. 2018)
    res = fit(
        m,
        "meanfield",
        IWAE(num_particles=8, gradient="dreg"),
        max_steps=1500,
        lr=0.05,
        tol_rel_obj=None,
        progress=False,
    )
    post = m.exact_posterior()
    assert abs(res.posterior().mean.item() - post.mean.item()) < 0.1 * post.stddev.item()
    assert res.grad_evals > 1500 * 8  # plus the Laplace initialization's evaluations


def test_convergence_detected_and_cap_warns():
    m = _normal_normal()
    res = fit(m, max_steps=20_000, lr=0.05, progress=False)
    assert res.converged and res.num_steps < 20_000 and "ELBO stationary" in res.convergence_reason
    with pytest.warns(ConvergenceWarning, match="not converged"):
        r2 = fit(m, max_steps=300, lr=1e-4, progress=False)
    assert not r2.converged and r2.num_steps == 300


def test_iterate_averaging_beats_last_iterate():
    m = LogisticRegression.synthetic(n=500, d=5, seed=0)
    ref = fit(m, "meanfield", max_steps=6000, lr=0.002, tol_rel_obj=None, average=0.5, progress=False)
    target = ref.posterior().mean
    sd = ref.posterior().stddev
    kw = dict(max_steps=2000, lr=0.05, tol_rel_obj=None, progress=False, seed=1, init="zeros")
    last = fit(m, "meanfield", average=0.0, **kw)
    avg = fit(m, "meanfield", average=0.25, **kw)
    err_last = ((last.posterior().mean - target).abs() / sd).max().item()
    err_avg = ((avg.posterior().mean - target).abs() / sd).max().item()
    assert err_avg < 0.5 * err_last, (err_avg, err_last)
    assert avg.averaged_steps == 500


def test_step_size_decay_reaches_small_posterior_scales():
    # posterior sds ~0.03 while Adam starts at lr=0.3: a constant step jitters by ~lr around the optimum;
    # decaying it on stationarity lands within a few hundredths of a posterior sd
    m = LinearRegression.synthetic(n=1000, d=3, seed=5, correlated=False)
    post = m.exact_posterior()
    fixed = fit(m, "meanfield", max_steps=3000, lr=0.3, tol_rel_obj=None, average=0.0, progress=False, init="zeros")
    res = fit(m, "meanfield", max_steps=20_000, lr=0.3, progress=False, init="zeros")
    err = lambda r: ((r.posterior().mean - post.mean).abs() / post.stddev).max().item()
    assert res.converged and res.lr < 0.3
    assert err(res) < 0.1 < err(fixed)


def test_lr_auto_picks_a_candidate():
    res = fit(_normal_normal(), max_steps=500, tol_rel_obj=None, progress=False, init="zeros")
    assert res.lr in (0.3, 0.1, 0.03, 0.01)
    assert res.grad_evals == 500 + 4 * 50


def test_seeded_runs_are_identical_and_leave_global_rng_alone():
    m = _normal_normal()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = fit(m, max_steps=300, lr=0.05, tol_rel_obj=None, progress=False, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    b = fit(m, max_steps=300, lr=0.05, tol_rel_obj=None, progress=False, seed=7)
    torch.testing.assert_close(a.posterior().mean, b.posterior().mean, rtol=0, atol=0)
    assert torch.equal(a.elbo_trace, b.elbo_trace)


class _Spiky(Model):
    """Log joint that is NaN in a band that q crosses on its way to the posterior N(3, 1)."""

    def __init__(self):
        super().__init__([Latent("x")], name="spiky")

    def log_joint(self, x):
        lp = Normal(3.0, 1.0).log_prob(x)
        return torch.where((x > 0.5) & (x < 1.5), torch.full_like(lp, float("nan")), lp)


def test_nan_is_recovered_from_by_stepping_back():
    res = fit(_Spiky(), max_steps=1000, lr=0.5, tol_rel_obj=None, progress=False, init="zeros")  # crosses the band
    assert res.skipped_steps > 0
    assert "skipped" in str(res.summary())
    assert abs(res.posterior().mean.item() - 3.0) < 0.3


def test_persistent_nan_gives_clear_error():
    m = Model([Latent("x")], lambda x: torch.where(x.abs() > 0.05, x * float("nan"), -x * x))
    with pytest.raises(FitError, match="non-finite"):
        fit(m, max_steps=500, lr=0.1, tol_rel_obj=None, progress=False, max_recoveries=3)


def test_draws_and_summary_are_named_and_constrained():
    from varinf.models import EightSchools

    res = fit(EightSchools(), max_steps=300, lr=0.05, tol_rel_obj=None, progress=False)
    d = res.draws(300)
    assert set(d) == {"mu", "tau", "theta_tilde", "theta"}  # theta: the example's derived quantity
    assert d["tau"].shape == (300,) and bool((d["tau"] > 0).all())
    assert d["theta_tilde"].shape == (300, 8)
    text = str(res.summary(n=500))
    for name in ("mu", "tau", "theta_tilde[7]", "mean", "sd", "5%", "95%"):
        assert name in text
    assert res.summary(n=500).to_dict()["tau"]["mean"] > 0


def test_family_module_and_bad_arguments():
    m = _normal_normal()
    res = fit(m, FullRank(1), max_steps=100, lr=0.05, tol_rel_obj=None, progress=False)
    assert isinstance(res.family, FullRank)
    with pytest.raises(ValueError, match="dim"):
        fit(m, MeanField(3), max_steps=10, progress=False)
    with pytest.raises(ValueError, match="average"):
        fit(m, average=1.0)
    with pytest.raises(ValueError, match="unknown family"):
        fit(m, "gaussian")


def test_warnings_are_not_raised_when_converged():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit(_normal_normal(), max_steps=20_000, lr=0.05, progress=False)


def test_score_function_fit_on_normal_normal():
    m = _normal_normal()
    res = fit(m, "meanfield", ELBO(num_particles=8, gradient="score"), max_steps=3000, lr=0.02,
              tol_rel_obj=None, progress=False)  # fmt: skip
    post = m.exact_posterior()
    assert abs(res.posterior().mean.item() - post.mean.item()) < 0.2 * post.stddev.item()


def test_laplace_init_starts_at_the_posterior_of_a_gaussian_model():
    # for a linear-Gaussian model the Laplace approximation is the posterior: q starts (and stays) exact
    m = LinearRegression.synthetic(n=40, d=4, seed=6, correlated=True)
    post = m.exact_posterior()
    res = fit(m, "fullrank", max_steps=600, lr=0.01, tol_rel_obj=None, progress=False)
    q = res.posterior()
    assert bool((((q.mean - post.mean).abs() / post.stddev) < 0.05).all())
    assert bool(((q.stddev / post.stddev - 1).abs() < 0.05).all())


def test_laplace_init_falls_back_without_a_mode():
    # centered hierarchical model: log density -> +inf as the scale -> 0, so there is no mode
    y = torch.tensor([2.0, -1.0, 0.5, 1.5])

    def funnel(mu, tau, theta):
        lp = Normal(0.0, 5.0).log_prob(mu) + Normal(0.0, 5.0).log_prob(tau.log())
        lp = lp + Normal(mu[..., None], tau[..., None]).log_prob(theta).sum(-1)
        return lp + Normal(theta, 1.0).log_prob(y).sum(-1)

    from varinf.optim.laplace import laplace_init

    m = Model([Latent("mu"), Latent("tau", (), "positive"), Latent("theta", (4,))], funnel)
    assert not laplace_init(m.log_density, torch.zeros(m.dim)).ok
    with pytest.warns(UserWarning, match="Laplace initialization failed"):
        res = fit(m, max_steps=300, lr=0.05, tol_rel_obj=None, progress=False, init="laplace")
    assert res.num_steps == 300


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"lr": 0}, "lr must be > 0"),
        ({"lr": -0.1}, "lr must be > 0"),
        ({"lr": "fast"}, "lr must be"),
        ({"max_steps": -1}, "max_steps must be an integer >= 1"),
        ({"max_steps": 0}, "max_steps must be an integer >= 1"),
        ({"average": 1.0}, "average must be in"),
        ({"decay": 1.5}, "decay must be in"),
        ({"tol_rel_obj": 0}, "tol_rel_obj must be > 0"),
        ({"dtype": torch.int64}, "dtype must be torch.float32 or torch.float64"),
        ({"dtype": torch.float16}, "dtype must be torch.float32 or torch.float64"),
        ({"device": "gpu"}, "device must be a torch device"),
        ({"diagnose_draws": 10}, "diagnose_draws must be an integer >= 100"),
        ({"threads": 0}, "threads must be"),
        ({"method": "newton"}, "unknown method 'newton'"),
    ],
)
def test_invalid_options_get_one_line_errors_naming_them(options, name):
    with pytest.raises(ValueError, match=name) as info:
        fit(_normal_normal(), progress=False, **options)
    assert "\n" not in str(info.value)


def test_summary_names_the_family_asked_for_and_the_method():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(_normal_normal(), "full_rank", method="advi", max_steps=300, progress=False)
        auto = fit(_normal_normal(), "full_rank", progress=False)
    assert res.family_name == "fullrank" and res.method == "advi"
    text = str(res.summary(n=500))
    assert "fullrank family by advi" in text and "Preconditioned" not in text
    assert auto.method == "auto" and auto.route == ("pathfinder", "bam")
    assert "fullrank family by auto (pathfinder -> bam)" in str(auto.summary(n=500))
