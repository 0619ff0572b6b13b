"""Optimization: ``step``, ``fit``, convergence, iterate averaging, ``FitResult`` (see README.md here)."""

from .adam import LeanAdam
from .averaging import IterateAverage
from .convergence import RelativeChange
from .errors import ConvergenceWarning, FitError
from .fit import fit, initial_point
from .result import FitResult, Summary, SummaryRow
from .step import StepInfo, step
from .stepsize import CANDIDATE_LRS, adapt_lr

__all__ = [
    "CANDIDATE_LRS",
    "ConvergenceWarning",
    "FitError",
    "FitResult",
    "IterateAverage",
    "LeanAdam",
    "RelativeChange",
    "StepInfo",
    "Summary",
    "SummaryRow",
    "adapt_lr",
    "fit",
    "initial_point",
    "step",
]
