"""The shared progress bars: drawn on a terminal for long phases only, never when stderr is not a terminal."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest

import varinf.utils.progress_bars as progress_module
from varinf.cli.main import main
from varinf.utils.progress_bars import is_enabled, progress, progress_scope, track

# progress_bars.py loaded on its own (stdlib + tqdm), so the subprocess starts in a fraction of a second
PHASES = f"""
import importlib.util, time
spec = importlib.util.spec_from_file_location("progress", {str(Path(progress_module.__file__))!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
with mod.progress("short phase", total=3, unit="steps") as bar:  # 0.3 s: under the 1 s delay
    for _ in range(3):
        time.sleep(0.1)
        bar.update(1)
with mod.progress("long phase", total=25, unit="steps") as bar:  # 2.5 s
    for _ in range(25):
        time.sleep(0.1)
        bar.update(1)
print("done")
"""


def _run_on_terminal(argv: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run ``argv`` with stderr on a pseudo-terminal (stdout a pipe); returns (exit code, what the terminal got)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks, deadline = [], time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=timeout)
    proc.stdout.close()
    os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


def test_a_phase_longer_than_2s_shows_a_bar_on_a_terminal_a_short_one_does_not():
    """On a pseudo-terminal: the 2.5 s phase draws its bar (after the 1 s delay) with an honest unit and
    total; the 0.3 s phase draws nothing."""
    code, seen = _run_on_terminal([sys.executable, "-c", PHASES])
    assert code == 0
    assert "long phase" in seen and " steps" in seen and "/25" in seen, seen
    assert "25steps" not in seen and "short phase" not in seen, seen


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("terminal", "quiet"), [(True, False), (True, True), (False, False)],
                         ids=["terminal", "terminal-quiet", "not-a-terminal"])  # fmt: skip
def test_cli_phases_show_progress_on_a_terminal_only_and_never_with_quiet(tmp_path, monkeypatch, terminal, quiet):
    """``varinf cavi gmm`` draws its iteration bar on stderr when it is a terminal (delay 0: the fit is short),
    none under --quiet, and writes nothing at all to a stderr that is not a terminal."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-5, 1, (200, 2)), rng.normal(5, 1, (200, 2))])
    np.savetxt(tmp_path / "x.csv", x, delimiter=",")
    monkeypatch.setenv("VARINF_PROGRESS_DELAY", "0")
    err = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    argv = ["cavi", "gmm", str(tmp_path / "x.csv"), "--components", "4", *(["--quiet"] if quiet else [])]
    assert main(argv) == 0
    text = err.getvalue()
    drawn = "GMM (CAVI, until converged" in text and " iterations" in text
    assert drawn == (terminal and not quiet), text
    if not terminal:
        assert text == ""


def test_scope_and_flags_decide_whether_a_bar_is_drawn(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert is_enabled(None) and is_enabled(True) and not is_enabled(False)
    with progress_scope(False):
        assert not is_enabled(None) and is_enabled(True)  # an explicit True still wins
        with progress_scope(None):
            assert is_enabled(None)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not is_enabled(None)


def test_disabled_bars_count_and_track_yields_everything():
    with progress("phase", total=3, unit="paths", enabled=False) as bar:
        for _ in range(3):
            bar.update(1)
        assert bar.n == 3 and not bar.shown
    assert list(track(iter(range(4)), "x", unit="items", enabled=False)) == [0, 1, 2, 3]


def test_nested_bars_take_their_own_lines_and_write_goes_above_them(monkeypatch):
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("VARINF_PROGRESS_DELAY", "0")
    with progress("outer", total=2, unit="paths") as outer:
        with progress("inner", total=5, unit="iterations") as inner:
            assert outer._bar.pos != inner._bar.pos
            inner.update(5)
            progress_module.write("a warning line")
        outer.update(2)
    text = err.getvalue()
    assert "outer" in text and "inner" in text and "a warning line\n" in text
    assert progress_module._open == []
