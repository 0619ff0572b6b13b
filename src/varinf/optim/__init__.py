"""Optimization: ``step``, ``fit``, convergence, iterate averaging, ``FitResult`` (see README.md here)."""

from ..errors import ConvergenceWarning, FitError
from .adam import LeanAdam
from .advi import advi
from .averaging import IterateAverage
from .config import FitConfig
from .convergence import RelativeChange
from .fit import METHODS, optimize
from .minibatch import MinibatchLogDensity
from .predict import Predictions
from .result import FitResult, Summary, SummaryRow
from .start import initial_point
from .step import StepInfo, step
from .stepsize import CANDIDATE_LRS, adapt_lr

__all__ = [
    "CANDIDATE_LRS",
    "METHODS",
    "ConvergenceWarning",
    "FitConfig",
    "FitError",
    "FitResult",
    "IterateAverage",
    "LeanAdam",
    "MinibatchLogDensity",
    "Predictions",
    "RelativeChange",
    "StepInfo",
    "Summary",
    "SummaryRow",
    "adapt_lr",
    "advi",
    "initial_point",
    "optimize",
    "step",
]
