"""ArviZ InferenceData export: groups, names, az.summary / az.plot_posterior, netCDF round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

az = pytest.importorskip("arviz")

from varinf.diagnostics import from_inference_data, to_inference_data  # noqa: E402


def test_export_groups_and_summary(linreg_fullrank):
    d = linreg_fullrank.diagnostics
    idata = to_inference_data(linreg_fullrank)
    groups = {"posterior", "sample_stats", "log_likelihood", "posterior_predictive", "observed_data"}
    assert set(idata.groups()) == groups  # a model with data and simulate: LOO and PPC groups too
    assert list(idata.posterior.data_vars) == ["beta"]
    assert idata.posterior["beta"].shape == (1, d.num_draws, 3)  # independent draws: one chain, not 4 pretend ones
    assert idata.posterior.attrs["independent_draws"] == 1 and "not MCMC" in idata.posterior.attrs["note"]
    np.testing.assert_array_equal(idata.sample_stats["log_weight"].values.reshape(-1), d.psis.log_weights.numpy())
    np.testing.assert_allclose(np.exp(idata.sample_stats["psis_log_weight"].values).sum(), 1.0)
    assert idata.posterior.attrs["khat"] == d.khat and idata.posterior.attrs["verdict"] == d.verdict
    summ = az.summary(idata, kind="stats")
    np.testing.assert_allclose(summ["mean"].values, d.draws["beta"].mean(0).numpy(), atol=1e-3)


def test_netcdf_round_trip_reproduces_draws_and_weights(linreg_fullrank, tmp_path):
    res = linreg_fullrank
    idata = to_inference_data(res)
    path = tmp_path / "fit.nc"
    idata.to_netcdf(str(path))
    back = az.from_netcdf(str(path))
    draws = from_inference_data(back)
    torch.testing.assert_close(draws["beta"], res.diagnostics.draws["beta"], rtol=0, atol=0)
    # the stored log weights are log p(x, z) - log q(z) of exactly these draws
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # Model.unconstrain casts to the default dtype
    try:
        u = res.model.unconstrain(draws)
    finally:
        torch.set_default_dtype(old)
    with torch.no_grad():
        lw = res.model.log_density(u) - res.family().log_prob(u)
    np.testing.assert_allclose(back.sample_stats["log_weight"].values.reshape(-1), lw.numpy(), rtol=1e-10)
    assert back.posterior.attrs["model"] == "linear_regression"


def test_plot_posterior_and_derived_quantities(linreg_fullrank):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idata = to_inference_data(linreg_fullrank, quantities=lambda z: {"beta_sum": z["beta"].sum(-1)})
    assert idata.posterior["beta_sum"].shape == (1, linreg_fullrank.diagnostics.num_draws)
    axes = az.plot_posterior(idata, var_names=["beta_sum"])
    assert axes is not None
    plt.close("all")
    with pytest.raises(ValueError, match="same names"):
        to_inference_data(linreg_fullrank, quantities=lambda z: {"beta": z["beta"]})


def test_export_without_diagnostics_draws_fresh(linreg_fullrank):
    idata = to_inference_data(linreg_fullrank, num_draws=300)
    assert idata.posterior["beta"].shape == (1, 300, 3)
    assert to_inference_data(linreg_fullrank, num_draws=300, chains=4).posterior["beta"].shape == (4, 75, 3)


def test_summary_and_loo_clean_with_pointwise_groups(linreg_fullrank):
    """az.summary gives no r-hat for independent draws (one chain: no pretend MCMC convergence check) and no
    Python warning; az.loo on the log_likelihood group; the groups agree with the model: observed_data is the
    model's y, log_likelihood its pointwise log density."""
    import warnings

    res = linreg_fullrank
    idata = to_inference_data(res, num_draws=400)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a shape or r-hat warning fails the test
        summ = az.summary(idata)
        loo = az.loo(idata)
    assert np.isnan(summ["r_hat"].values).all()
    N = res.model.num_rows
    assert idata.log_likelihood["y"].shape == (1, 400, N)
    assert idata.posterior_predictive["y"].shape == (1, 400, N)
    np.testing.assert_array_equal(idata.observed_data["y"].values, res.model.data["y"].numpy())
    draws = {"beta": torch.as_tensor(idata.posterior["beta"].values.reshape(400, 3))}
    ll = res.model.pointwise_log_likelihood({"beta": draws["beta"].to(res.model.data["X"].dtype)})
    np.testing.assert_allclose(idata.log_likelihood["y"].values.reshape(400, N), ll.numpy(), rtol=1e-5, atol=1e-5)
    # elpd_loo is close to the in-sample log predictive density minus the effective number of parameters (3)
    lpd = (torch.logsumexp(ll.double(), 0) - np.log(400)).sum().item()
    assert abs(loo.elpd_loo - (lpd - loo.p_loo)) < 1e-6 * abs(lpd) + 0.5 and 1.5 < loo.p_loo < 5


def test_pointwise_groups_left_out_beyond_memory(linreg_fullrank):
    model = linreg_fullrank.model
    old = model.max_memory
    model.max_memory = 1000
    try:
        with pytest.warns(UserWarning, match="left out"):
            idata = to_inference_data(linreg_fullrank, num_draws=200)
    finally:
        model.max_memory = old
    assert set(idata.groups()) == {"posterior", "sample_stats"}
