"""Plots of a fit (matplotlib, Agg backend, PNG): the ELBO trace and marginals of q against reference draws.

Every ``plot_*`` returns a ``matplotlib.figure.Figure`` (no global pyplot state); :func:`save_figure`
writes it atomically and refuses to overwrite an existing file unless ``overwrite=True``.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from ..utils import atomic_output

if TYPE_CHECKING:  # matplotlib is imported when a plot is drawn, not with varinf
    from matplotlib.figure import Figure

__all__ = ["flatten_draws", "plot_elbo_trace", "plot_marginals", "save_figure"]


def _np(v) -> np.ndarray:
    if isinstance(v, Tensor):
        return v.detach().to("cpu", torch.float64).numpy()
    return np.asarray(v, dtype=np.float64)


def flatten_draws(draws: Mapping[str, Tensor], index_origin: int = 0) -> tuple[list[str], np.ndarray]:
    """``{name: (S, *shape)}`` -> (element names like ``beta[0]``, ``(S, total)`` float64 array)."""
    names, cols = [], []
    for name, v in draws.items():
        a = _np(v)
        S, shape = a.shape[0], a.shape[1:]
        cols.append(a.reshape(S, -1))
        if not shape:
            names.append(name)
            continue
        for idx in itertools.product(*(range(s) for s in shape)):
            names.append(f"{name}[{','.join(str(i + index_origin) for i in idx)}]")
    return names, np.concatenate(cols, axis=1)


def plot_elbo_trace(result, smooth: int | None = None) -> Figure:
    """Per-step bound estimates (light), their running mean over ``smooth`` steps (default window/len/50), and
    the shaded iterate-averaging phase. The y axis spans the last 90% of the run (early values can be
    orders of magnitude lower and would flatten the interesting part)."""
    trace = _np(result.elbo_trace)
    if trace.size == 0:
        raise ValueError("this fit has an empty ELBO trace (no optimization steps were taken)")
    from matplotlib.figure import Figure

    steps = np.arange(1, trace.size + 1)
    k = smooth or max(1, trace.size // 50)
    run = np.convolve(trace, np.ones(k) / k, mode="valid")
    fig = Figure(figsize=(7, 3.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(steps, trace, lw=0.5, alpha=0.35, color="C0", label="per-step estimate")
    ax.plot(steps[k - 1 :], run, lw=1.5, color="C0", label=f"running mean ({k} steps)")
    if getattr(result, "averaged_steps", 0):
        ax.axvspan(trace.size - result.averaged_steps, trace.size, color="C2", alpha=0.12, label="iterate averaging")
    tail = trace[trace.size // 10 :]
    lo, hi = np.quantile(tail, [0.01, 1.0])
    pad = 0.1 * (hi - lo) + 1e-9
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("bound (nats)")
    status = "converged" if result.converged else "not converged"
    ax.set_title(f"{getattr(result.model, 'name', 'model')}: {result.family_label}, {status}", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_marginals(
    names: Sequence[str],
    draws,
    reference=None,
    weights=None,
    max_panels: int = 30,
    bins: int = 40,
    title: str | None = None,
) -> Figure:
    """Histogram of each scalar's marginal under q against reference draws.

    Args:
        names: ``d`` labels.
        draws: ``(S, d)`` draws of q (constrained space).
        reference: ``(M, d)`` reference posterior draws (e.g. posteriordb's), same columns, or None.
        weights: ``(S,)`` normalized PSIS weights: adds the PSIS-reweighted marginal of q.
        max_panels: show at most this many scalars (the first ones).
    """
    q = _np(draws)
    if q.ndim != 2 or q.shape[1] != len(names):
        raise ValueError(f"draws must be (S, {len(names)}) for {len(names)} names, got {q.shape}")
    ref = None if reference is None else _np(reference)
    if ref is not None and (ref.ndim != 2 or ref.shape[1] != q.shape[1]):
        raise ValueError(f"reference must be (M, {q.shape[1]}), got {ref.shape}")
    w = None if weights is None else _np(weights)
    from matplotlib.figure import Figure

    d = min(len(names), max_panels)
    cols = min(d, 5)
    rows = math.ceil(d / cols)
    fig = Figure(figsize=(2.6 * cols, 2.1 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for j in range(d):
        ax = axes[j]
        cols_j = [q[:, j]] + ([ref[:, j]] if ref is not None else [])
        lo, hi = np.quantile(np.concatenate(cols_j), [0.001, 0.999])
        edges = np.linspace(lo, hi, bins + 1) if hi > lo else bins
        if ref is not None:
            ax.hist(ref[:, j], edges, density=True, color="0.6", alpha=0.6, label="reference")
        ax.hist(q[:, j], edges, density=True, histtype="step", lw=1.4, color="C0", label="q")
        if w is not None:
            ax.hist(q[:, j], edges, weights=w, density=True, histtype="step", lw=1.2, ls="--", color="C3", label="PSIS")
        ax.set_title(names[j], fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    for ax in axes[d:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title + (f" (first {d} of {len(names)})" if d < len(names) else ""), fontsize=10)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, overwrite: bool = False, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically (temporary file, then rename).

    Raises ``FileExistsError`` if ``path`` exists and ``overwrite`` is False, so nothing is lost.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plots are written as PNG; give a path ending in .png, got {str(path)!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --force) to replace it")
    with atomic_output(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path
