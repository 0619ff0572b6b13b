"""Plots write PNGs safely; varinf.fit attaches diagnostics and the summary explains k-hat."""

from __future__ import annotations

import os
import stat
import warnings

import pytest
import torch

import varinf
from varinf.diagnostics import Diagnostics, flatten_draws, plot_elbo_trace, plot_marginals, save_figure
from varinf.models import NormalNormal


def test_elbo_trace_and_marginal_plots(linreg_fullrank, tmp_path):
    res = linreg_fullrank
    p = save_figure(plot_elbo_trace(res), tmp_path / "trace.png")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    names, q = flatten_draws(res.diagnostics.draws)
    assert names == ["beta[0]", "beta[1]", "beta[2]"]
    ref = res.model.exact_posterior().sample((2000,))
    fig = plot_marginals(names, q, reference=ref, weights=res.diagnostics.psis.weights, title="linreg")
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 3
    save_figure(fig, tmp_path / "marginals.png")
    with pytest.raises(FileExistsError):
        save_figure(fig, tmp_path / "marginals.png")
    save_figure(fig, tmp_path / "marginals.png", overwrite=True)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["marginals.png", "trace.png"]  # no temp files left
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask  # as open() would create it, not mkstemp's 0600
    with pytest.raises(ValueError, match="PNG"):
        save_figure(fig, tmp_path / "x.pdf")
    with pytest.raises(ValueError, match=r"\(S, 2\)"):
        plot_marginals(["a", "b"], q)


def test_fit_attaches_diagnostics_and_summary_explains_khat(linreg_fullrank):
    assert isinstance(linreg_fullrank.diagnostics, Diagnostics)
    text = str(linreg_fullrank.summary(n=500, verbose=True))
    assert "PSIS k-hat" in text and "min(1 - 1/log10 S, 0.7)" in text and "log evidence" in text


def test_diagnose_false_and_engine_fit_stay_undiagnosed():
    model = NormalNormal(torch.tensor([1.0, 2.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = varinf.fit(model, max_steps=200, tol_rel_obj=None, lr=0.1, progress=False, diagnose=False)
        b = varinf.optim.optimize(model, max_steps=200, tol_rel_obj=None, lr=0.1, progress=False)
        c = varinf.fit(model, max_steps=200, tol_rel_obj=None, lr=0.1, progress=False, diagnose_draws=500)
    assert a.diagnostics is None and b.diagnostics is None
    assert c.diagnostics.num_draws == 500


def test_bad_fit_warns_and_summary_says_so(correlated_meanfield):
    text = "\n".join(correlated_meanfield.diagnostics.summary_lines())
    assert "WARNING" in text and "unreliable" in text
