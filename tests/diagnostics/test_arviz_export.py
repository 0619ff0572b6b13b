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
    assert set(idata.groups()) == {"posterior", "sample_stats"}
    assert list(idata.posterior.data_vars) == ["beta"]
    assert idata.posterior["beta"].shape == (1, d.num_draws, 3)
    np.testing.assert_array_equal(idata.sample_stats["log_weight"].values[0], d.psis.log_weights.numpy())
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
    np.testing.assert_allclose(back.sample_stats["log_weight"].values[0], lw.numpy(), rtol=1e-10)
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
