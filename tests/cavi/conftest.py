"""One thread for this folder (torch and the BLAS that scikit-learn uses): on the shared 2-core machine,
intra-op threads spin against other jobs and make small CAVI problems 10-40x slower (measured: one GMM fit
0.37 s with one torch thread vs 15 s with two)."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits

from varinf.utils import num_threads


@pytest.fixture(autouse=True)
def _one_thread():
    with num_threads(1), threadpool_limits(limits=1):
        yield
