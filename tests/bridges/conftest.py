"""The three tiny Stan programs the test suite compiles (once per cache: ``$VARINF_CACHE_DIR`` or
``~/.cache/varinf``; later runs load them in milliseconds). Stan tests skip only when there is no C++ compiler."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

PROGRAMS = Path(__file__).with_name("programs")


def _compiler_or_skip() -> None:
    if shutil.which(os.environ.get("CXX") or "g++") is None:
        pytest.skip("no C++ compiler (g++) to compile Stan programs")


@pytest.fixture(scope="session")
def bernoulli():
    _compiler_or_skip()
    from varinf import StanModel

    return StanModel(PROGRAMS / "bernoulli.stan", PROGRAMS / "bernoulli.json", progress=False)


@pytest.fixture(scope="session")
def eight_schools():
    _compiler_or_skip()
    from varinf import StanModel
    from varinf.models import EightSchools

    return StanModel(PROGRAMS / "eight_schools.stan", {"J": 8, "y": EightSchools.Y, "sigma": EightSchools.SIGMA},
                     progress=False)  # fmt: skip


@pytest.fixture(scope="session")
def constrained():
    _compiler_or_skip()
    from varinf import StanModel

    return StanModel(PROGRAMS / "constrained.stan", {"K": 3, "alpha": [2.0, 3.0, 4.0]}, progress=False)
