"""Shared test fixtures: seeds, thread count, and the location of ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$VARINF_SHARED_DATA`` or ``../shared/data`` beside the repository, if present."""
    env = os.environ.get("VARINF_SHARED_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


@pytest.fixture
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("shared data (../shared/data or $VARINF_SHARED_DATA) not available")
    return d


# Test tensors are tiny: one thread avoids OpenMP start-up/spin costs, which dominate on a loaded 2-core box.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def float64():
    """Run a test module in float64 (use with ``pytestmark = pytest.mark.usefixtures("float64")``)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
