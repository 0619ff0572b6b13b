r"""Progress bars for long phases, one helper for every package (a thin layer over tqdm).

Rules every bar follows:

- **only on a terminal**: a bar is drawn on stderr, and only when stderr is a terminal (``enabled=None``,
  the default everywhere); ``enabled=False`` or an enclosing :func:`progress_scope(False) <progress_scope>`
  (the CLI's ``--quiet``) turns it off, ``enabled=True`` forces it on;
- **only for long phases**: nothing is drawn before :data:`DELAY` seconds (1 s) have passed, so a phase that
  ends sooner leaves no trace (environment ``VARINF_PROGRESS_DELAY`` overrides it, e.g. 0 in tests);
- **honest units and totals**: the unit is a plural noun of what is counted (``"iterations"``, ``"passes"``,
  ``"images"``, ``"gradient evaluations"``) and the bar reads ``12 iterations [00:03, 4.0 iterations/s]``;
  ``total`` is given only when the phase really runs that many, never a cap it may stop short of (say the
  cap in ``desc`` instead: ``"GMM (until converged, at most 1000)"``);
- **nestable**: a phase inside a phase (diagnostics inside a fit, a path inside Pathfinder) gets its own line
  below its parent's; bars vanish when their phase ends (``leave=False``);
- **warnings stay readable**: :func:`write` prints a line on stderr above any open bars.

Usage (a context manager, or :func:`track` around an iterable)::

    >>> from varinf.utils.progress_bars import progress, track
    >>> with progress("Pathfinder paths", total=4, unit="paths", enabled=False) as bar:
    ...     for _ in range(4):
    ...         bar.update(1)
    >>> [x for x in track(range(3), "passes", unit="passes", enabled=False)]
    [0, 1, 2]
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from collections.abc import Iterable, Iterator

__all__ = ["DELAY", "Progress", "is_enabled", "progress", "progress_scope", "track", "write"]

DELAY = 1.0  # seconds before a bar appears: shorter phases draw nothing
_scope: contextvars.ContextVar[bool | None] = contextvars.ContextVar("varinf_progress", default=None)
_open: list[Progress] = []  # the bars drawn now, outermost first (their screen lines)


def _delay() -> float:
    try:
        return max(0.0, float(os.environ.get("VARINF_PROGRESS_DELAY", DELAY)))
    except ValueError:
        return DELAY


def is_enabled(enabled: bool | None = None) -> bool:
    """Whether a bar asked for with ``enabled`` is drawn: ``True``/``False`` as given; ``None`` follows the
    enclosing :func:`progress_scope`, else whether stderr is a terminal."""
    if enabled is None:
        enabled = _scope.get()
    if enabled is None:
        try:
            enabled = sys.stderr.isatty()
        except (AttributeError, ValueError):  # replaced or closed stderr
            enabled = False
    return bool(enabled)


@contextlib.contextmanager
def progress_scope(enabled: bool | None) -> Iterator[None]:
    """Within the block, bars asked for with ``enabled=None`` follow ``enabled`` (``None``: the terminal test).

    The CLI wraps each command in ``progress_scope(False)`` under ``--quiet``, so phases deep inside a fit
    (diagnostics, evidence) stay silent without every function passing a flag down."""
    token = _scope.set(enabled)
    try:
        yield
    finally:
        _scope.reset(token)


class Progress:
    """One phase's bar; a no-op object when it is not drawn. Use :func:`progress` to make one."""

    def __init__(self, desc: str, total: int | None, unit: str, enabled: bool | None):
        self.desc, self.total, self.unit, self.n = desc, total, unit, 0
        self._bar = None
        if is_enabled(enabled):
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total,
                desc=desc,
                unit=f" {unit}",  # tqdm writes "{n}{unit}": "12 iterations", not "12iterations"
                leave=False,
                delay=_delay(),
                position=len(_open),
                file=sys.stderr,
                dynamic_ncols=True,
            )
            _open.append(self)

    @property
    def shown(self) -> bool:
        """Whether this phase has a bar (it may not be on screen yet: see :data:`DELAY`)."""
        return self._bar is not None

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)

    def set_postfix(self, **values) -> None:
        """Extra fields after the bar, e.g. ``bound=-5.66``."""
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)

    def set_description(self, desc: str) -> None:
        self.desc = desc
        if self._bar is not None:
            self._bar.set_description(desc, refresh=False)

    def reset(self, total: int | None = None) -> None:
        """Start counting again (a new epoch), optionally with a new total."""
        self.n = 0
        if total is not None:
            self.total = total
        if self._bar is not None:
            self._bar.reset(total=self.total)

    def clear(self) -> None:
        """Erase the bar from the screen until its next update (before printing a line on stdout)."""
        if self._bar is not None:
            self._bar.clear()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            if self in _open:
                _open.remove(self)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(desc: str, total: int | None = None, *, unit: str = "iterations", enabled: bool | None = None) -> Progress:
    """A bar for one phase (use it as a context manager, and call ``update``).

    Args:
        desc: what the phase does, e.g. ``"BaM"``, ``"bridge sampling"``.
        total: how many units the phase will run (``None`` when it stops on convergence: then the bar counts
            with no total, and ``desc`` should name the cap).
        unit: plural noun of what one ``update(1)`` counts.
        enabled: ``None`` (default): drawn only on a terminal and outside ``progress_scope(False)``.
    """
    return Progress(desc, total, unit, enabled)


def track(
    iterable: Iterable,
    desc: str,
    *,
    total: int | None = None,
    unit: str = "iterations",
    enabled: bool | None = None,
    capped: bool = False,
) -> Iterator:
    """Yield from ``iterable`` with a bar counting its items (``total`` defaults to ``len(iterable)``).

    ``capped``: the iterable's length is a cap the phase may stop short of (a loop that breaks on convergence):
    the bar then has no total and its label says the cap, ``"BaM (until converged, at most 10,000)"``."""
    if capped:
        cap = len(iterable)  # type: ignore[arg-type]
        desc, total = f"{desc} (until converged, at most {cap:,})", None
        iterable = iter(iterable)
    elif total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with progress(desc, total, unit=unit, enabled=enabled) as bar:
        for item in iterable:
            yield item
            bar.update(1)


def write(text: str) -> None:
    """Print ``text`` as a line on stderr without garbling the bars on screen (they are redrawn below it)."""
    if _open:
        from tqdm.auto import tqdm

        tqdm.write(text, file=sys.stderr)
    else:
        print(text, file=sys.stderr, flush=True)
