"""Fit one posteriordb posterior with ``varinf.fit`` and compare it with the reference draws.

``fit_posterior(name, family)`` = load -> build the model -> ``varinf.fit`` (diagnostics included) ->
compare q's draws (and their PSIS reweighting) with the reference -> optional plots (ELBO trace,
marginals of q vs reference). The ``varinf posteriordb fit`` command is a thin wrapper around it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..api import fit
from ..diagnostics import plot_elbo_trace, plot_marginals, save_figure
from ..optim import FitResult
from .compare import ReferenceComparison, compare_to_reference
from .loader import Posterior, load_posterior
from .registry import build_model

__all__ = ["PosteriorFit", "fit_posterior"]


@dataclass
class PosteriorFit:
    """A fit of a posteriordb posterior and, when it has reference draws, its accuracy.

    Attributes:
        posterior: what was loaded.
        result: the ``FitResult`` (with ``diagnostics``).
        comparison: q's draws vs the reference (None without reference draws).
        psis_comparison: the same draws PSIS-reweighted vs the reference.
        plots: paths of the PNGs written.
    """

    posterior: Posterior
    result: FitResult
    comparison: ReferenceComparison | None
    psis_comparison: ReferenceComparison | None
    plots: list[Path] = field(default_factory=list)

    def summary_lines(self, verbose: bool = False) -> list[str]:
        """The fit's summary (the long form with ``verbose``) and the comparison with the reference draws."""
        lines = [str(self.result.summary(verbose=verbose))]
        c, w = self.comparison, self.psis_comparison
        if c is None:
            lines.append(f"{self.posterior.name}: no reference draws to compare with")
            return lines
        lines.append(
            f"vs reference ({len(c.names)} quantities): error of means max {c.max_mean_error:.3f} "
            f"(at {c.worst()}), mean {c.mean_mean_error:.3f} reference sds; PSIS-corrected max "
            f"{w.max_mean_error:.3f}; sd ratio q/reference {c.min_sd_ratio:.2f}-{c.max_sd_ratio:.2f}"
        )
        lines += [f"  {p}" for p in self.plots]
        return lines


def fit_posterior(
    name: str,
    family: str = "meanfield",
    root: str | os.PathLike | None = None,
    plots: str | os.PathLike | None = None,
    overwrite: bool = False,
    **fit_kwargs,
) -> PosteriorFit:
    """Fit posterior ``name`` with ``family``; ``fit_kwargs`` go to :func:`varinf.fit`.

    ``plots``: a folder for ``<name>_<family>_trace.png`` and ``..._marginals.png`` (existing files are
    kept unless ``overwrite``).
    """
    post = load_posterior(name, root)
    model = build_model(post)
    stem = f"{post.name}_{family}"
    if plots is not None and not overwrite:  # refuse before spending the fit, not after
        for suffix in ("trace", "marginals"):
            path = Path(plots) / f"{stem}_{suffix}.png"
            if path.exists():
                raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --force) to replace it")
    fit_kwargs.setdefault("seed", 0)
    result = fit(model, family=family, **fit_kwargs)
    d = result.diagnostics
    comparison = psis_comparison = None
    names = model.reference_names
    with torch.no_grad():
        quantities = model.reference_quantities(d.draws)
    if post.reference is not None:
        comparison = compare_to_reference(quantities, post.reference, names)
        psis_comparison = compare_to_reference(quantities, post.reference, names, weights=d.psis.weights)
    out = PosteriorFit(post, result, comparison, psis_comparison)
    if plots is not None:
        folder = Path(plots)
        out.plots.append(save_figure(plot_elbo_trace(result), folder / f"{stem}_trace.png", overwrite))
        ref = post.reference.flat if post.reference is not None else None
        title = f"{post.name}: {family}, k-hat {d.khat:.2f}"
        fig = plot_marginals(names, quantities, ref, weights=d.psis.weights, title=title)
        out.plots.append(save_figure(fig, folder / f"{stem}_marginals.png", overwrite))
    return out
