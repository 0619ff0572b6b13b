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


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
