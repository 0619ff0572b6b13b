"""The examples in the docstrings run: every ``>>>`` example in every varinf module, as a doctest.

Examples marked ``# doctest: +SKIP`` (downloads, data from ``../shared/data``, long runs) are shown in
the documentation but not run here.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import warnings

import pytest

import varinf


def modules_with_examples() -> list[str]:
    names = ["varinf"]
    for info in pkgutil.walk_packages(varinf.__path__, "varinf."):
        if info.name.endswith("__main__"):
            continue  # running it would start the command line
        names.append(info.name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = []
    for name in names:
        module = importlib.import_module(name)
        if any(t.examples for t in finder.find(module, name, globs={})):
            found.append(name)
    return found


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # examples may fit poor q's on purpose; their warnings are not failures
        for test in finder.find(module, name, globs=dict(vars(module))):  # as pytest --doctest-modules
            if not test.examples:
                continue
            result = runner.run(test, out=failures.append, clear_globs=True)
            del result
    assert runner.failures == 0, "".join(failures)
