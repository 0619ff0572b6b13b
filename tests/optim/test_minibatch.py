"""Minibatch SVI: the estimate is unbiased (an epoch of batches averages to the exact value and gradient),
the control variate removes most of the subsampling noise, the fit equals the full-batch fit, the
subsample Laplace start lands on the full-data mode, and bad batch sizes get one-line errors."""

from __future__ import annotations

import pytest
import torch

import varinf
from varinf.models import LogisticRegression, NormalNormal
from varinf.optim import FitConfig
from varinf.optim.initialization import start
from varinf.optim.minibatch import MinibatchLogDensity, laplace_start

pytestmark = pytest.mark.usefixtures("float64")


def _model(n=2000, d=3, seed=0):
    return LogisticRegression.synthetic(n=n, d=d, seed=seed)


def _mode(model):
    return start(model, FitConfig()).u0


def test_an_epoch_of_batches_averages_to_the_exact_value_and_gradient():
    model = _model(n=1000)
    anchor = _mode(model) + 0.3
    est = MinibatchLogDensity(model, 100, anchor, seed=1)
    u = (anchor + 0.05 * torch.randn(2, model.dim)).requires_grad_(True)
    values, grads = [], []
    for _ in range(10):  # one epoch: the 10 batches partition the rows
        v = est(u)
        values.append(v.detach())
        grads.append(torch.autograd.grad(v.sum(), u)[0])
    exact = model.log_density(u)
    torch.testing.assert_close(torch.stack(values).mean(0), exact.detach(), rtol=1e-10, atol=1e-8)
    torch.testing.assert_close(torch.stack(grads).mean(0), torch.autograd.grad(exact.sum(), u)[0], rtol=1e-9, atol=1e-8)
    assert est.epochs == 1.0 and est.anchors == 1
    est(u)
    assert est.anchors == 2  # moved to the draws' mean when the second epoch starts
    torch.testing.assert_close(est.anchor, u.detach().mean(0))


def test_control_variate_shrinks_gradient_noise():
    model = _model(n=4000)
    mode = _mode(model)
    u = (mode + 0.02 * torch.randn(model.dim, generator=torch.Generator().manual_seed(0))).requires_grad_(True)
    est = MinibatchLogDensity(model, 100, mode, seed=2)
    est._next_anchor = 10**9  # keep the anchor at the mode
    cv, plain = [], []
    for _ in range(40):
        rows = est._next_rows()
        z, ladj = model.constrain(u[None])
        naive = model.log_prior(**z) + ladj + 40 * model.likelihood_sum(z, rows)
        plain.append(torch.autograd.grad(naive.sum(), u)[0])
        est._order, est._pos = est._order, est._pos - 100  # same rows for the control-variate estimate
        cv.append(torch.autograd.grad(est(u[None]).sum(), u)[0])
    noise = lambda g: torch.stack(g).std(0).norm().item()
    assert noise(cv) < noise(plain) / 10


def test_minibatch_fit_equals_full_batch_fit():
    model = _model(n=2000, d=2, seed=4)
    kw = dict(progress=False, tol_rel_obj=None, max_steps=1500, lr=0.02)  # the same fixed schedule for both
    full = varinf.fit(model, "fullrank", diagnose=False, **kw)
    mini = varinf.fit(model, "fullrank", batch_size=100, diagnose_draws=1000, **kw)
    qf, qm = full.posterior(), mini.posterior()
    assert ((qm.mean - qf.mean).abs() / qf.stddev).max() < 0.1
    assert ((qm.stddev / qf.stddev - 1).abs()).max() < 0.1
    assert mini.batch_size == 100 and "minibatches of 100 of 2,000 rows: 75 epochs" in str(mini.summary(n=500))
    assert mini.diagnostics.khat < 0.5


def test_laplace_on_a_subsample_lands_on_the_full_data_mode():
    model = _model(n=6000, d=3, seed=5)
    u0 = torch.zeros(model.dim)
    full = laplace_start(model, u0)  # 6000 <= LAPLACE_ROWS: all rows
    sub = laplace_start(model, u0, rows=600)
    sd = torch.linalg.inv(full.precision).diagonal().sqrt()
    assert sub.ok and "600 of 6000 rows" in sub.reason
    assert ((sub.mode - full.mode).abs() / sd).max() < 0.01  # Newton steps on all rows
    assert ((sub.precision.diagonal() / full.precision.diagonal() - 1).abs()).max() < 0.3  # subsample curvature


def test_bad_batch_sizes_are_one_line_errors():
    model = _model(n=500)
    with pytest.raises(ValueError, match="batch_size 501 is larger than the 500 rows"):
        varinf.fit(model, batch_size=501, progress=False)
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1, got 0"):
        varinf.fit(model, batch_size=0, progress=False)
    plate_less = varinf.load_example("eight_schools")
    with pytest.raises(ValueError, match="needs a model with data rows"):
        varinf.fit(plate_less, batch_size=4, progress=False)


def test_conjugate_posterior_from_minibatches():
    g = torch.Generator().manual_seed(0)
    model = NormalNormal(1.5 + torch.randn(1000, generator=g), sigma=1.0, prior_scale=10.0)
    res = varinf.fit(model, batch_size=50, progress=False, diagnose=False, tol_rel_obj=None, max_steps=1500, lr=0.02)
    post, q = model.exact_posterior(), res.posterior()
    assert abs(q.mean.item() - post.mean.item()) < 0.1 * post.stddev.item()
    assert abs(q.stddev.item() / post.stddev.item() - 1) < 0.1


def test_default_method_with_batch_size_runs_minibatch_advi_and_gaussian_methods_refuse():
    g = torch.Generator().manual_seed(0)
    model = NormalNormal(1.5 + torch.randn(400, generator=g), sigma=1.0, prior_scale=10.0)
    res = varinf.fit(model, batch_size=40, progress=False, diagnose=False, max_steps=300)
    assert res.method == "auto" and res.route == ("advi",) and "batch_size" in res.route_reason
    assert res.batch_size == 40 and res.family_name == "meanfield"
    for method in ("bam", "pathfinder"):
        with pytest.raises(ValueError, match=f"method='{method}' uses every data row"):
            varinf.fit(model, method=method, batch_size=40, progress=False)
