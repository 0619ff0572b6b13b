"""Every combination a user can ask for, tried: method × family × model form × batch size × dtype.

Each combination either fits — a finite summary, ``res.draws(n)`` with every latent and derived quantity by
name, in its shape, dtype and support, and the user's model left as it was — or is refused *at once*: a
one-line ``ValueError``/``TypeError`` raised by varinf itself (not from deep inside torch), before the model is
evaluated even once, whose message names the option at fault and says what would work instead. Which
combinations are refused is written down here (:func:`refused_option`), so a change of behaviour fails a test.

The model is tiny (5 unconstrained dimensions: a real vector, a positive scale, a simplex; 24 rows) and the
budgets small (``max_steps``, 500 diagnostic draws), but every call goes through ``varinf.fit`` with the
defaults a user gets (``lr="auto"`` trials, the Laplace start, the diagnostics). Flows are built small
(one transform, 16 hidden units) through the family keywords a user would pass. ``method="advi"`` is given a
step size in float32 and on flows, so that ADVI's step-size trials run once per family and model form.
"""

from __future__ import annotations

import itertools
import re
import traceback
import warnings
from pathlib import Path

import pytest
import torch
from torch.distributions import Categorical, Dirichlet, HalfNormal, Normal

import varinf
from varinf import ConvergenceWarning, Latent, Model
from varinf.diagnostics import DiagnosticWarning

METHODS = ("auto", "advi", "bam", "pathfinder")
FAMILIES = ("auto", "meanfield", "fullrank", "lowrank", "flow")
FORMS = ("joint", "joint_per_draw", "plate")
BATCH = 8
DTYPES = (torch.float32, torch.float64)
N = 24
SRC = Path(varinf.__file__).resolve().parent
FLOW_KW = {"transforms": 1, "hidden": (16,)}
BUDGET = {"max_steps": 150, "diagnose_draws": 500, "progress": False, "seed": 0}
LATENTS = [Latent("beta", (2,)), Latent("sigma", (), "positive"), Latent("w", (3,), "simplex")]


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, generator=g)
    y = 0.5 + 1.5 * x + 0.7 * torch.randn(N, generator=g)
    c = torch.arange(N) % 3
    return x, y, c


class Counter:
    """Counts the model's evaluations: a refusal must come before the first one."""

    calls = 0


def make_model(form: str) -> Model:
    """The same posterior in each form: y ~ N(beta0 + beta1 x, sigma), c ~ Categorical(w), with priors."""
    x, y, c = _data()

    def log_prior(beta, sigma, w):  # one draw, or any leading sample dims (only the last axes are reduced)
        Counter.calls += 1
        return Normal(0.0, 3.0).log_prob(beta).sum(-1) + HalfNormal(2.0).log_prob(sigma) + Dirichlet(
            torch.ones(3, dtype=w.dtype)).log_prob(w)  # fmt: skip

    if form == "joint":  # vectorized: latents (*S, *shape)

        def log_joint(beta, sigma, w):
            mean = beta[..., :1] + beta[..., 1:] * x
            lik = Normal(mean, sigma[..., None]).log_prob(y).sum(-1) + w.log()[..., c].sum(-1)
            return log_prior(beta, sigma, w) + lik

        return Model(LATENTS, log_joint, vectorized=True, name=form,
                     derived=lambda beta, sigma, w: {"mean0": beta[..., 0] + 0.5 * beta[..., 1]})  # fmt: skip
    if form == "joint_per_draw":  # written for one draw, as in the README

        def log_joint_one(beta, sigma, w):
            lik = Normal(beta[0] + beta[1] * x, sigma).log_prob(y).sum() + Categorical(probs=w).log_prob(c).sum()
            return log_prior(beta, sigma, w) + lik

        return Model(LATENTS, log_joint_one, vectorized=False, name=form,
                     derived=lambda beta, sigma, w: {"mean0": beta[0] + 0.5 * beta[1]})  # fmt: skip
    return Model(
        LATENTS,
        log_prior=log_prior,
        log_likelihood=lambda beta, sigma, w, data: (
            Normal(beta[0] + beta[1] * data["x"], sigma).log_prob(data["y"]) + w.log()[data["c"]]
        ),
        data={"x": x, "y": y, "c": c},
        derived=lambda beta, sigma, w, data: {"mean0": beta[0] + 0.5 * beta[1]},
        name=form,
    )


def refused_option(method: str, family: str, form: str, batch_size) -> str | None:
    """The option a combination is refused for (None: it fits). Batch-and-Match and Pathfinder use every row at
    every iteration and fit Gaussians with a full or low-rank covariance; minibatches need data rows."""
    if batch_size is not None and method in ("bam", "pathfinder"):
        return "batch_size"
    if method in ("bam", "pathfinder") and family in ("meanfield", "flow"):
        return "family"
    if batch_size is not None and form != "plate":
        return "batch_size"
    return None


CASES = list(itertools.product(METHODS, FAMILIES, FORMS, (None, BATCH), DTYPES))


def _id(case) -> str:
    method, family, form, bs, dtype = case
    return f"{method}-{family}-{form}-{'B' + str(bs) if bs else 'full'}-{str(dtype)[6:]}"


def _raised_by_varinf(err: BaseException) -> bool:
    """The statement that raised is a ``raise`` in varinf's own source, not an error from deep inside torch."""
    last = traceback.extract_tb(err.__traceback__)[-1]
    return Path(last.filename).resolve().is_relative_to(SRC) and (last.line or "").lstrip().startswith("raise")


def _fit(method, family, form, bs, dtype):
    model = make_model(form)
    options = dict(BUDGET, method=method, dtype=dtype)
    if family == "flow":  # a flow step costs ~10 ms: fewer of them
        options.update(FLOW_KW, max_steps=60)
    if method == "advi" and (family == "flow" or dtype == torch.float32):
        # lr="auto" runs 200 steps of trials before the fit: once per family is enough (float64; on a flow,
        # auto's minibatch route runs them: auto-flow-plate-B8-*)
        options["lr"] = 0.03
    if bs is not None:
        options["batch_size"] = bs
    return model, options


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_combination_fits_or_is_refused_at_once(case):
    method, family, form, bs, dtype = case
    model, options = _fit(*case)
    option = refused_option(method, family, form, bs)
    Counter.calls = 0
    if option is not None:
        with pytest.raises((ValueError, TypeError)) as info:
            varinf.fit(model, family, **options)
        msg = str(info.value)
        assert Counter.calls == 0, f"refused only after evaluating the model {Counter.calls} times: {msg}"
        assert "\n" not in msg and _raised_by_varinf(info.value), msg
        assert f"{option}=" in msg, f"the message does not name {option}: {msg}"
        assert "method=" in msg or "Model(" in msg, f"the message does not say what would work: {msg}"
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = varinf.fit(model, family, **options)
    foreign = [f"{w.category.__name__}: {w.message}" for w in caught
               if not issubclass(w.category, ConvergenceWarning | DiagnosticWarning)]  # fmt: skip
    assert not foreign, foreign
    assert res.method == method and res.batch_size == bs
    summary = res.summary(n=500, seed=0)
    assert {r.name for r in summary.rows} >= {"beta[0]", "beta[1]", "sigma", "w[0]", "w[2]", "mean0"}
    for r in summary.rows:
        assert all(map(torch.isfinite, torch.tensor([r.mean, r.sd, *r.quantiles]))), r
    assert not re.search(r"\bnan\b", str(summary), re.IGNORECASE), str(summary)
    draws = res.draws(7, seed=1)
    shapes = {k: tuple(v.shape) for k, v in draws.items()}
    assert shapes == {"beta": (7, 2), "sigma": (7,), "w": (7, 3), "mean0": (7,)}, shapes
    assert all(v.dtype == dtype and bool(torch.isfinite(v).all()) for v in draws.values()), draws
    assert bool((draws["sigma"] > 0).all()) and bool((draws["w"] >= 0).all())
    torch.testing.assert_close(draws["w"].sum(-1), torch.ones(7, dtype=dtype))
    # what the user passed is left as it was: fit(dtype=...) converts a copy
    changed = [f"{n}: {b.dtype}" for n, b in model.named_buffers() if b.dtype not in (torch.float32, torch.int64)]
    assert not changed, f"fit(dtype={dtype}) converted the user's model in place: {changed}"


@pytest.fixture(scope="module")
def reference() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Exact posterior means and sds, not from VI: w | c is Dirichlet(1 + counts); (beta, sigma) | x, y by
    quadrature on a 100^3 grid around the least-squares fit (float64; the grid's faces hold < 1e-6 of the mass)."""
    x, y, c = _data()
    x, y = x.double(), y.double()
    X = torch.stack([torch.ones(N, dtype=torch.float64), x], 1)
    b = torch.linalg.lstsq(X, y[:, None]).solution[:, 0]
    s = ((y - X @ b).square().sum() / (N - 2)).sqrt()
    se = s * torch.linalg.inv(X.T @ X).diagonal().sqrt()
    grids = [torch.linspace(b[i] - 10 * se[i], b[i] + 10 * se[i], 100, dtype=torch.float64) for i in range(2)]
    grids.append(torch.linspace(0.3 * s, 4.0 * s, 100, dtype=torch.float64))
    b0, b1, sig = torch.meshgrid(*grids, indexing="ij")
    # sum_i (y_i - b0 - b1 x_i)^2 from the data's sufficient statistics
    rss = (y.square().sum() - 2 * b0 * y.sum() - 2 * b1 * (x * y).sum() + N * b0.square()
           + 2 * b0 * b1 * x.sum() + b1.square() * x.square().sum())  # fmt: skip
    lp = (Normal(0.0, 3.0).log_prob(b0) + Normal(0.0, 3.0).log_prob(b1) + HalfNormal(2.0).log_prob(sig)
          - N * sig.log() - rss / (2 * sig.square()))  # fmt: skip
    p = (lp - lp.max()).exp()
    p = p / p.sum()
    assert p[0].sum() + p[-1].sum() + p[:, 0].sum() + p[:, -1].sum() + p[..., 0].sum() + p[..., -1].sum() < 1e-6

    def moments(f):
        m = (p * f).sum()
        return m, ((p * (f - m).square()).sum()).sqrt()

    (m0, s0), (m1, s1) = moments(b0), moments(b1)
    a = 1.0 + torch.bincount(c, minlength=3).double()  # Dirichlet(1, 1, 1) prior, categorical counts
    w_mean = a / a.sum()
    w_sd = (a * (a.sum() - a) / (a.sum() ** 2 * (a.sum() + 1))).sqrt()
    return {"beta": (torch.stack([m0, m1]), torch.stack([s0, s1])), "sigma": moments(sig), "w": (w_mean, w_sd),
            "mean0": moments(b0 + 0.5 * b1)}  # fmt: skip


def test_the_three_model_forms_are_one_density():
    """Same log density (and derived quantities) at random unconstrained points, batched or one at a time."""
    models = [make_model(form).double() for form in FORMS]
    u = torch.randn(6, models[0].dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for m in models[1:]:
        torch.testing.assert_close(m.log_density(u), models[0].log_density(u))
        torch.testing.assert_close(m.log_density(u[0]), models[0].log_density(u[0]))
        z, _ = m.constrain(u)
        torch.testing.assert_close(m.derived_quantities(z), models[0].derived_quantities(z))


ACCURACY = [(m, f, form, None) for m, f in (("auto", "auto"), ("advi", "meanfield"), ("bam", "lowrank"),
                                             ("pathfinder", "fullrank")) for form in FORMS]  # fmt: skip
ACCURACY.append(("auto", "meanfield", "plate", BATCH))  # minibatches: the likelihood scaled by N/B


@pytest.mark.parametrize(("method", "family", "form", "bs"), ACCURACY, ids=[_id((*c, torch.float64)) for c in ACCURACY])
def test_the_three_model_forms_give_the_same_posterior(reference, method, family, form, bs):
    """Not only shapes: in each form (and with minibatches) the summary a user reads (PSIS-corrected where the
    method asks for it) lands near the exact posterior."""
    model, options = _fit(method, family, form, bs, torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # minibatch ADVI's step-size trials pick a large step for the noisy bound: it needs more steps to settle
        res = varinf.fit(model, family, **dict(options, max_steps=500 if bs is None else 1500, diagnose_draws=4000))
    rows = {r.name: r for r in res.summary(n=4000, seed=2).rows}
    for k, (mean, sd) in reference.items():
        for j, (m, s) in enumerate(zip(mean.reshape(-1).tolist(), sd.reshape(-1).tolist())):
            r = rows[k if mean.dim() == 0 else f"{k}[{j}]"]
            assert abs(r.mean - m) < 0.25 * s, f"{r.name}: mean {r.mean:.4f}, exact {m:.4f} (sd {s:.4f})"
            assert 0.7 < r.sd / s < 1.3, f"{r.name}: sd {r.sd:.4f}, exact {s:.4f}"


# ------------------------------------------------------------------------------------------ as a new user would
def _schools() -> Model:
    """The README's eight schools, written for one draw."""
    y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
    sigma = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])

    def log_joint(mu, tau, eta):
        Counter.calls += 1
        theta = mu + tau * eta
        return (Normal(0, 5).log_prob(mu) + HalfNormal(5).log_prob(tau) + Normal(0, 1).log_prob(eta).sum()
                + Normal(theta, sigma).log_prob(y).sum())  # fmt: skip

    return Model([Latent("mu"), Latent("tau", (), "positive"), Latent("eta", (8,))], log_joint, vectorized=False,
                 derived=lambda mu, tau, eta: {"theta": mu + tau * eta})  # fmt: skip


def _scalar_model() -> Model:
    """One positive latent: a one-dimensional unconstrained space."""
    return Model([Latent("s", (), "positive")], lambda s: HalfNormal(1.0).log_prob(s) - (s - 1).square(),
                 vectorized=False, name="scalar")  # fmt: skip


@pytest.mark.parametrize(
    ("call", "shapes"),
    [
        (lambda: varinf.fit(_schools(), "meanfield", method="advi", **BUDGET), {"eta": (5, 8), "theta": (5, 8)}),
        (lambda: varinf.fit(_schools(), family="fullrank", **BUDGET), {"eta": (5, 8), "theta": (5, 8)}),
        (lambda: varinf.fit(make_model("plate"), batch_size=BATCH, **BUDGET), {"beta": (5, 2), "w": (5, 3)}),
        (lambda: varinf.fit(_scalar_model(), "lowrank", method="advi", **BUDGET), {"s": (5,)}),
        (lambda: varinf.fit(_scalar_model(), "lowrank", method="bam", **BUDGET), {"s": (5,)}),
        (lambda: varinf.fit(_scalar_model(), "flow", **BUDGET, **FLOW_KW), {"s": (5,)}),
    ],
    ids=["readme-meanfield-advi", "readme-fullrank", "data-batch_size", "1d-lowrank-advi", "1d-lowrank-bam", "1d-flow"],
)
def test_calls_from_the_readme_fit(call, shapes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", DiagnosticWarning)
        res = call()
    draws = res.draws(5, seed=0)
    assert {k: tuple(v.shape) for k, v in draws.items() if k in shapes} == shapes
    assert all(bool(torch.isfinite(v).all()) for v in draws.values())


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"batch_size": 4}, "batch_size="),  # eight schools has no data rows
        ({"method": "bam", "objective": varinf.IWAE(4)}, "objective="),
        ({"method": "pathfinder", "lr": 0.1}, "lr=0.1"),
        ({"method": "bam", "tol_rel_obj": None}, "tol_rel_obj=None"),
        ({"objective": "iwae"}, "objective must be"),
        ({"objective": varinf.IWAE}, "objective must be"),
        ({"family": None}, "family must be"),
        ({"family": "gaussian"}, "unknown family 'gaussian'"),
        ({"method": "bam", "family": "flow"}, "family="),
        ({"dtype": torch.float16}, "dtype must be"),
        ({"dtype": "float64"}, "dtype must be"),
        ({"device": "gpu"}, "device must be"),
        ({"diagnose_draws": 10}, "diagnose_draws must be"),
    ],
    ids=[
        "batch_size-without-data",
        "bam-objective",
        "pathfinder-lr",
        "bam-tol_rel_obj",
        "objective-string",
        "objective-class",
        "family-None",
        "family-unknown",
        "bam-flow",
        "dtype-float16",
        "dtype-string",
        "device-gpu",
        "diagnose_draws-10",
    ],
)
def test_misplaced_options_are_refused_before_the_model_runs(options, named):
    model, options = _schools(), dict(options)
    family = options.pop("family", "auto")
    Counter.calls = 0
    with pytest.raises((ValueError, TypeError)) as info:
        varinf.fit(model, family, **options, **{k: v for k, v in BUDGET.items() if k not in options})
    msg = str(info.value)
    assert named in msg and "\n" not in msg and _raised_by_varinf(info.value), msg
    assert Counter.calls == 0, f"refused only after {Counter.calls} model evaluations: {msg}"


def test_cuda_asked_for_without_cuda_is_one_line():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match=r"device='cuda', but .* no CUDA device"):
        varinf.fit(_schools(), device="cuda", **BUDGET)
