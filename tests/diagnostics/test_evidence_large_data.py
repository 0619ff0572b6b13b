"""The evidence of a model with many rows: the diagnostics' importance sampling runs on the subsample estimate
and widens its se by the subsample error; "auto" spends no full-data gradients; bridge sampling on request
runs on the exact model through the chunked likelihood, never holding a draws x rows tensor."""

from __future__ import annotations

import pytest
import torch

import varinf
from varinf.models import LinearRegression
from varinf.models import subsample as subsample_module
from varinf.models.chunking import TEMPORARIES
from varinf.models.subsample import EstimatedModel

ROWS = 24_000  # above SUBSAMPLE_ROWS (20,000): with EXACT_ROWS lowered, the large-data path at a test's cost
MAX_MEMORY = 1 << 20  # 1 MiB for the (draws x rows) temporaries


class RecordingRegression(LinearRegression):
    """Linear regression that records the largest (draws x rows) block its likelihood was asked for."""

    largest = 0

    def log_likelihood(self, data, beta):
        out = super().log_likelihood(data, beta)
        RecordingRegression.largest = max(RecordingRegression.largest, out.numel())
        return out


@pytest.fixture(scope="module")
def large_fit():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(subsample_module, "EXACT_ROWS", 1000)
        base = LinearRegression.correlated(n=ROWS, d=3, rho=0.9, seed=0).double()
        m = RecordingRegression(base.data["X"], base.data["y"])
        res = varinf.fit(m, "meanfield", seed=0, dtype=torch.float64, max_steps=300, progress=False, batch_size=2000)
        assert isinstance(res.draws_model, EstimatedModel)
        yield m, res, base.exact_log_evidence()


@pytest.mark.filterwarnings("ignore::varinf.optim.ConvergenceWarning", "ignore::varinf.diagnostics.DiagnosticWarning")
def test_auto_spends_no_full_data_gradients_and_states_the_subsample_error(large_fit):
    _, res, exact = large_fit
    d = res.diagnostics
    est = res.draws_model.estimator
    assert d.evidence is d.log_evidence and d.evidence.method == "is" and d.evidence.grad_evals == 0
    assert "subsample error" in d.log_evidence.note and d.log_evidence.se >= est.max_se > 0
    if d.log_evidence.reliable:
        assert abs(d.log_evidence.estimate - exact) < 4 * d.log_evidence.se
    else:  # a lower bound in expectation: not far above the truth
        assert d.log_evidence.estimate < exact + 4 * est.max_se + 0.05


def test_bridge_on_request_streams_the_rows(large_fit):
    m, res, exact = large_fit
    RecordingRegression.largest = 0
    # only now: chunked sums are first order, so the fit's Laplace Hessian needs one chunk. The fit's model is a
    # float64 copy of m (fit(dtype=...) leaves the user's float32 model as it is)
    assert res.model is not m and m.data["X"].dtype == torch.float32
    res.model.max_memory = MAX_MEMORY
    ev = varinf.evidence(res, method="bridge", budget=3000, seed=0)
    assert ev.method == "bridge" and ev.grad_evals <= 3000
    assert ev.reliable, ev.note
    assert abs(ev.estimate - exact) < 4 * ev.se + 0.01
    itemsize = 8
    assert 0 < RecordingRegression.largest * itemsize * TEMPORARIES <= MAX_MEMORY  # chunks within max_memory
    assert RecordingRegression.largest < 16 * ROWS  # never one block of all chains x all rows


def test_linear_regression_evidence_without_an_n_by_n_matrix():
    from torch.distributions import MultivariateNormal

    m = LinearRegression.correlated(n=40, d=3, rho=0.5, seed=2, noise_scale=0.3, prior_scale=2.0)
    X, y = m.data["X"].double(), m.data["y"].double()
    cov = m.prior_scale**2 * X @ X.T + m.noise_scale**2 * torch.eye(40, dtype=torch.float64)
    dense = MultivariateNormal(torch.zeros_like(y), cov).log_prob(y).item()
    assert abs(m.exact_log_evidence() - dense) < 1e-9
