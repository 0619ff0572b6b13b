"""One torch thread for this folder: on the shared 2-core machine, intra-op threads spin against other
jobs and make small CAVI problems 10-40x slower (measured: 0.37 s vs 15 s for one GMM fit)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
