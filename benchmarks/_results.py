"""What produced a benchmark result, and how results are written. Shared by the scripts in benchmarks/ (run as
``python benchmarks/<script>.py``, so this folder is on sys.path); never imported by the package.

The convention every script follows:

- its numbers live in ``benchmarks/results/<stem>.json``: ``{"meta": provenance(...), ...}`` (and, for a
  partial rerun, ``meta["reruns"]``: the provenance of each later run and what it recomputed);
- ``markdown(payload) -> str`` renders ``<stem>.md`` from that JSON *alone* (no globals, no clock, no args);
- :func:`save` writes the JSON atomically, reads it back and writes the markdown from what was read, so the
  markdown never shows a number the JSON does not hold;
- ``python benchmarks/<script>.py --report [--out ...]`` rewrites the markdown from the JSON and runs nothing;
- ``tests/benchmarks/test_results_regenerate.py`` checks that every committed ``.md`` equals ``markdown(json)``.

:func:`provenance` records the command exactly as run (interpreter, argv, the environment variables that change
the numbers, CPU affinity as ``taskset``, niceness), the commit and whether the tree had uncommitted changes,
package versions, thread settings, the CPU model and the load average; :func:`finish` adds the load at the end
and the run's wall and CPU time. Results recorded before this convention carry ``meta["legacy"]`` (what was
recorded then, and the list of what was not): :func:`provenance_lines` prints both honestly.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

__all__ = [
    "REPO",
    "RESULTS",
    "Stopwatch",
    "finish",
    "fmt",
    "git_commit",
    "load",
    "provenance",
    "provenance_lines",
    "report",
    "save",
    "stem_of",
    "with_rerun",
]

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

# Environment variables that change what a benchmark measures (threads, kernels, JAX's backend and precision).
ENV_KEYS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "ATEN_CPU_CAPABILITY",
    "XLA_FLAGS",
    "JAX_PLATFORMS",
    "JAX_ENABLE_X64",
    "CUDA_VISIBLE_DEVICES",
    "VARINF_SHARED_DATA",
)
# As given on the command line, before a script sets its own defaults (scripts import this module first).
_ENV_GIVEN = {k: os.environ[k] for k in ENV_KEYS if k in os.environ}
PACKAGES = (
    "varinf",
    "torch",
    "numpy",
    "scipy",
    "jax",
    "jaxlib",
    "numpyro",
    "blackjax",
    "pyro-ppl",
    "scikit-learn",
    "zuko",
    "constriction",
    "arviz",
)


def git_commit() -> str:
    """HEAD's short hash, plus the varinf source folders with uncommitted changes (they affect the numbers)."""
    head, dirty = _git_state()
    folders = sorted({p.split("/")[2] for p in dirty if p.startswith("src/varinf/") and p.count("/") >= 3})
    return head + (f" (uncommitted changes in src/varinf/{{{','.join(folders)}}})" if folders else "")


def _git_state() -> tuple[str, list[str]]:
    """(short HEAD hash or 'unknown', paths with uncommitted changes under src/ and benchmarks/ but not results)."""
    try:
        run = lambda *a: subprocess.run(["git", "-C", str(REPO), *a], capture_output=True, text=True, check=True).stdout
        head = run("rev-parse", "--short", "HEAD").strip()
        status = run("status", "--porcelain", "--", "src", "benchmarks", ":(exclude)benchmarks/results")
        return head, sorted(line[3:] for line in status.splitlines())
    except (OSError, subprocess.CalledProcessError):
        return "unknown", []


def _command(env_given: dict[str, str], affinity: list[int], nice: int) -> str:
    prefix = [f"{k}={v}" for k, v in env_given.items()]
    if affinity and len(affinity) < (os.cpu_count() or len(affinity)):
        prefix += ["taskset", "-c", ",".join(map(str, affinity))]
    if nice:
        prefix += ["nice", "-n", str(nice)]
    return shlex.join([*prefix, sys.executable, *sys.argv])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _threads() -> dict[str, int]:
    out = {}
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch"] = torch.get_num_threads()
        out["torch_interop"] = torch.get_num_interop_threads()
    return out


def _children_cpu() -> float:
    """User + system CPU seconds of this process's finished child processes (benchmark workers)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def provenance(script: str, **settings) -> dict:
    """What is running now: call it when the run starts (after the script set its thread counts).

    ``script`` is the script's ``__file__``; ``settings`` are the run's parameters worth showing (budgets, seeds),
    stored as given. :func:`finish` completes the record when the run ends.
    """
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        affinity = []
    nice = os.nice(0) if hasattr(os, "nice") else 0
    head, dirty = _git_state()
    varinf = sys.modules.get("varinf")
    return {
        "script": Path(script).resolve().relative_to(REPO).as_posix(),
        "command": _command(_ENV_GIVEN, affinity, nice),
        "argv": list(sys.argv),
        "python": sys.executable,
        "env": {k: os.environ[k] for k in ENV_KEYS if k in os.environ},
        "affinity": affinity,
        "nice": nice,
        "commit": head,
        "dirty": dirty,
        "varinf_source": str(Path(varinf.__file__).parent) if varinf is not None else None,
        "versions": _versions(),
        "threads": _threads(),
        "cpu": {"model": _cpu_model(), "logical_cpus": os.cpu_count(), "platform": platform.platform()},
        "load_start": list(os.getloadavg()),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "_t0": [time.perf_counter(), time.process_time(), _children_cpu()],
        **({"settings": settings} if settings else {}),
    }


def finish(meta: dict) -> dict:
    """Add the end of the run to ``meta`` (in place; returned): load average, time stamp, wall and CPU seconds.

    With reruns, the run being finished is the last rerun (the one still holding its timer)."""
    reruns = meta.get("reruns", [])
    run = reruns[-1] if reruns and "_t0" in reruns[-1] else meta
    t0 = run.pop("_t0", None)
    run["load_end"] = list(os.getloadavg())
    run["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    run["threads_end"] = _threads()
    if run.get("varinf_source") is None and "varinf" in sys.modules:  # imported after the run started
        run["varinf_source"] = str(Path(sys.modules["varinf"].__file__).parent)
    if t0 is not None:
        run["wall_s"], run["cpu_s"] = time.perf_counter() - t0[0], time.process_time() - t0[1]
        run["children_cpu_s"] = _children_cpu() - t0[2]
    return meta


def with_rerun(first: dict, run: dict, what: str) -> dict:
    """The first run's provenance with ``run`` (a later, partial run that recomputed ``what``) appended."""
    return {**first, "reruns": [*first.get("reruns", []), {**run, "what": what}]}


def _jsonable(x):
    if hasattr(x, "tolist"):  # numpy / torch scalars and arrays
        return x.tolist()
    raise TypeError(f"{type(x).__name__} is not JSON serializable")


def _public(meta: dict) -> dict:
    """``meta`` without private entries (the running timer), also inside its reruns."""
    out = {k: v for k, v in meta.items() if not k.startswith("_")}
    if "reruns" in out:
        out["reruns"] = [{k: v for k, v in r.items() if not k.startswith("_")} for r in out["reruns"]]
    return out


def stem_of(out: str | os.PathLike) -> Path:
    """``benchmarks/results/x``, ``.../x.json`` or ``.../x.md`` -> the stem path ``.../x``."""
    p = Path(out)
    return p.with_suffix("") if p.suffix in (".json", ".md") else p


def load(out: str | os.PathLike) -> dict:
    """The JSON payload at ``<stem>.json``."""
    path = stem_of(out).with_suffix(".json")
    if not path.is_file():
        raise SystemExit(f"{path}: no results JSON (run the benchmark first)")
    return json.loads(path.read_text())


def save(out: str | os.PathLike, payload: dict, markdown: Callable[[dict], str]) -> str:
    """Write ``<stem>.json`` atomically, then ``<stem>.md`` = ``markdown`` of the JSON as read back; returns it.

    A running record (``meta`` not yet finished) is saved without its private timer, so a run that is
    interrupted leaves a JSON that renders.
    """
    from varinf.utils import atomic_write_text

    stem = stem_of(out)
    clean = {**payload, "meta": _public(payload.get("meta", {}))}
    text = json.dumps(clean, indent=1, allow_nan=True, default=_jsonable) + "\n"
    atomic_write_text(stem.with_suffix(".json"), text)
    md = markdown(json.loads(text))
    atomic_write_text(stem.with_suffix(".md"), md)
    return md


def report(out: str | os.PathLike, markdown: Callable[[dict], str]) -> str:
    """``--report``: rewrite ``<stem>.md`` from ``<stem>.json``; nothing is run. Returns the markdown."""
    from varinf.utils import atomic_write_text

    stem = stem_of(out)
    md = markdown(load(stem))
    atomic_write_text(stem.with_suffix(".md"), md)
    return md


class Stopwatch:
    """Wall and CPU seconds of a block (CPU: this process, all its threads): ``with Stopwatch() as sw: ...``,
    then ``sw.wall``, ``sw.cpu``. On a shared machine the CPU time of a one-thread process is the robust figure."""

    wall: float = math.nan
    cpu: float = math.nan

    def __enter__(self) -> Stopwatch:
        self._t = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._t[0]
        self.cpu = time.process_time() - self._t[1]


# ----------------------------------------------------------------------------------------------- rendering
def _load_text(meta: dict, key: str) -> str:
    v = meta.get(key)
    return f"{v[0]:.1f}" if v else "?"


def _one_run(meta: dict) -> str:
    """One line: commit, versions, threads, CPU, load, times."""
    if "legacy" in meta:
        leg = meta["legacy"]
        shown = "; ".join(f"{k}: {v}" for k, v in leg.get("recorded", {}).items())
        return (
            f"Recorded before `benchmarks/_results.py` existed ({leg.get('source', 'the JSON of that run')})"
            + (f": {shown}" if shown else "")
            + f". Not recorded: {', '.join(leg.get('not_recorded', []))}."
        )
    dirty = meta.get("dirty", [])
    commit = f"commit {meta.get('commit', '?')}" + (
        f" with uncommitted changes in {', '.join(dirty[:6])}{' …' if len(dirty) > 6 else ''}" if dirty else " (clean)"
    )
    v = meta.get("versions", {})
    versions = ", ".join(f"{k} {x}" for k, x in v.items())
    threads = meta.get("threads", {})
    env = meta.get("env", {})
    thread_bits = [f"torch {threads['torch']} thread(s)"] if "torch" in threads else []
    thread_bits += [f"{k}={env[k]}" for k in ("OMP_NUM_THREADS", "XLA_FLAGS", "ATEN_CPU_CAPABILITY") if k in env]
    cpu = meta.get("cpu", {})
    aff = meta.get("affinity", [])
    pinned = f", pinned to CPU {','.join(map(str, aff))}" if aff and len(aff) < cpu.get("logical_cpus", 0) else ""
    src = meta.get("varinf_source")
    if src and Path(src) != REPO / "src" / "varinf":
        commit += f" (varinf imported from {src})"
    times = ""
    if "wall_s" in meta:
        kids = meta.get("children_cpu_s", 0.0)
        times = f"; {meta['wall_s'] / 60:.1f} min wall, {meta['cpu_s'] / 60:.1f} min CPU" + (
            f" + {kids / 60:.1f} min CPU in worker processes" if kids >= 0.05 * 60 else ""
        )
    end = f", {_load_text(meta, 'load_end')} at the end" if "load_end" in meta else " (run not finished)"
    return (
        f"{commit}; {versions}; {'; '.join(thread_bits) or 'threads not set'}; {cpu.get('model', '?')} "
        f"({cpu.get('logical_cpus', '?')} logical CPUs{pinned}); 1-min load average {_load_text(meta, 'load_start')} "
        f"at the start{end}; started {meta.get('started', '?')}{times}."
    )


def provenance_lines(meta: dict) -> list[str]:
    """Markdown lines saying how the results were produced (and each later partial rerun)."""
    lines = [f"Command: `{meta['command']}`  " if "command" in meta else "Command: not recorded  "]
    lines.append(_one_run(meta) + "  ")
    for r in meta.get("reruns", []):
        what = f" ({r['what']})" if r.get("what") else ""
        lines.append(f"Rerun{what}: `{r.get('command', '?')}` — {_one_run(r)}  ")
    lines[-1] = lines[-1].rstrip()
    return lines


def fmt(x, spec: str = ".3f", missing: str = "—") -> str:
    """``x`` formatted, or ``missing`` for None / NaN / inf."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return missing
    return format(x, spec)
