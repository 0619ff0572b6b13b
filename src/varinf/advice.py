"""Advice in the words of the place it is read: one message catalogue, two renderings.

A warning or a summary line that tells the user what to do next names a knob. In Python that knob is a
keyword or a method (``max_steps``, ``varinf.evidence(res, method='bridge')``); at the command line it is a
flag (``--max-steps``, ``--evidence bridge``). Messages never spell either out: they ask this catalogue with
:func:`render`, which renders the entry for the current :func:`audience` (``"python"`` unless the CLI's
``main`` has switched it to ``"cli"`` for the run). Rendering happens when the message is built, so a
warning raised inside ``varinf fit`` already names the flag.

::

    >>> render("max_steps")
    'max_steps'
    >>> with audience("cli"):
    ...     render("evidence_bridge")
    '--evidence bridge'

At the bottom of the import graph (imports nothing from varinf), beside :mod:`varinf.errors`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["CATALOGUE", "Advice", "audience", "current_audience", "render"]

AUDIENCES = ("python", "cli")
_audience: contextvars.ContextVar[str] = contextvars.ContextVar("varinf_audience", default="python")


@dataclass(frozen=True)
class Advice:
    """One piece of advice, as the Python API names it and as the command line names it (``str.format``
    fields such as ``{n}`` or ``{name}`` are filled by :func:`render`)."""

    python: str
    cli: str


CATALOGUE: dict[str, Advice] = {
    "max_steps": Advice("max_steps", "--max-steps"),
    "longer_advi": Advice("method='advi', max_steps={n}", "--method advi --max-steps {n}"),
    "method_advi": Advice("method='advi', family='{name}'", "--method advi --family {name}"),
    "draws": Advice("diagnose_draws", "--draws"),
    "family": Advice("family='{name}'", "--family {name}"),
    "evidence_bridge": Advice("varinf.evidence(res, method='bridge')", "--evidence bridge"),
    "evidence_budget": Advice("evidence_budget={n}", "--evidence-budget {n}"),
    "psis_estimates": Advice(
        "res.diagnostics.mean(), res.draws(corrected=True)", "--method auto, whose table is PSIS-corrected"
    ),
    "corrected_draws": Advice("res.draws() are PSIS-resampled draws", "-o writes PSIS-resampled draws"),
    "own_draws": Advice("res.draws() are q's draws", "-o writes q's draws"),
    "q_draws": Advice("res.draws(corrected=False)", "not written by -o"),
    "explain": Advice("res.summary(verbose=True)", "--explain"),
    "root": Advice("root=", "--root DIR"),
    "max_iter": Advice("max_iter", "--max-iter"),
    "n_init": Advice("n_init", "--n-init"),
    "tol": Advice("tol", "--tol"),
}


def current_audience() -> str:
    """``"python"`` or ``"cli"``: whose words :func:`render` uses now."""
    return _audience.get()


@contextlib.contextmanager
def audience(name: str) -> Iterator[None]:
    """Within the block, :func:`render` renders for ``name`` (``"python"`` or ``"cli"``)."""
    if name not in AUDIENCES:
        raise ValueError(f"audience must be one of {', '.join(AUDIENCES)}, got {name!r}")
    token = _audience.set(name)
    try:
        yield
    finally:
        _audience.reset(token)


def render(key: str, **values) -> str:
    """The catalogue's entry ``key`` rendered for the current :func:`audience`, its fields filled from ``values``."""
    entry = CATALOGUE[key]
    text = entry.cli if _audience.get() == "cli" else entry.python
    return text.format(**values)
