"""Every public name is on the API pages: ``varinf.__all__`` and each subpackage's ``__all__`` against the
entries of ``docs/api/*.rst`` (autosummary lists and the re-exported-name lists)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import varinf

API = Path(__file__).resolve().parents[2] / "docs" / "api"
pytestmark = pytest.mark.skipif(not API.is_dir(), reason="docs/api not in this checkout")


def documented_names(page: Path) -> set[str]:
    """Names listed on one API page: autosummary entries (last dotted part) and ``* ``NAME``:`` lines."""
    names, in_summary = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith(".. autosummary::"):
            in_summary = True
            continue
        if in_summary:
            entry = line.strip()
            if not line.strip():
                continue
            if not line.startswith("   "):
                in_summary = False
            elif not entry.startswith(":"):
                names.add(entry.lstrip("~").split(".")[-1])
                continue
            else:
                continue
        m = re.match(r"^\* ``(\w+)``:", line)
        if m:
            names.add(m.group(1))
    return names


def public_packages() -> list[str]:
    """Every subpackage of varinf that declares ``__all__`` (the CLI has none: it is no library API)."""
    found = []
    for info in pkgutil.walk_packages(varinf.__path__, "varinf."):
        if not info.ispkg or ".cli" in info.name:
            continue
        module = importlib.import_module(info.name)
        if getattr(module, "__all__", None):
            found.append(info.name)
    return found


def page_for(package: str) -> Path:
    return API / f"{package.removeprefix('varinf.')}.rst"


def test_top_level_names_documented():
    missing = sorted(set(varinf.__all__) - documented_names(API / "varinf.rst"))
    assert not missing, f"docs/api/varinf.rst lacks {missing}"


@pytest.mark.parametrize("package", public_packages())
def test_subpackage_names_documented(package):
    page = page_for(package)
    assert page.is_file(), f"no API page for {package}: add docs/api/{page.name} and list it in docs/api/index.rst"
    module = importlib.import_module(package)
    missing = sorted(set(module.__all__) - documented_names(page))
    assert not missing, f"{page.relative_to(API.parents[1])} lacks {missing}"


def test_public_modules_documented():
    """Public modules with their own ``__all__`` that the packages do not re-export: varinf.data.text."""
    module = importlib.import_module("varinf.data.text")
    missing = sorted(set(module.__all__) - documented_names(API / "data.text.rst"))
    assert not missing, f"docs/api/data.text.rst lacks {missing}"


def test_every_page_in_the_index():
    index = (API / "index.rst").read_text(encoding="utf-8")
    for page in API.glob("*.rst"):
        if page.name != "index.rst":
            assert re.search(rf"^   {re.escape(page.stem)}$", index, re.M), f"{page.name} is not in docs/api/index.rst"


def test_documented_names_exist():
    """No stale entries: every name on a subpackage's page is still exported."""
    for package in public_packages():
        module = importlib.import_module(package)
        stale = sorted(documented_names(page_for(package)) - set(module.__all__))
        assert not stale, f"{page_for(package).name} lists names {package} no longer exports: {stale}"
