"""Fitting q: the methods (``methods/``: ADVI, Batch-and-Match, Pathfinder, auto), the machinery they share, and
the ``FitResult`` a fit returns (see README.md here)."""

from ..errors import ConvergenceWarning, FitError, OptionError
from .adam import LeanAdam
from .averaging import IterateAverage
from .config import FitConfig
from .convergence import RelativeChange
from .dispatch import METHODS, optimize, run_method
from .gradient_step import StepInfo, step
from .initialization import initial_point
from .methods import ADVIOptions, AutoOptions, BaMOptions, MethodOptions, PathfinderOptions
from .minibatch import MinibatchLogDensity
from .prediction import Predictions
from .result import ADVIStats, FitResult, MethodRun, build_result
from .stepsize import CANDIDATE_LRS, adapt_lr
from .summary import Summary, SummaryRow

__all__ = [
    "CANDIDATE_LRS",
    "METHODS",
    "ADVIOptions",
    "ADVIStats",
    "AutoOptions",
    "BaMOptions",
    "ConvergenceWarning",
    "FitConfig",
    "FitError",
    "FitResult",
    "IterateAverage",
    "LeanAdam",
    "MethodOptions",
    "MethodRun",
    "MinibatchLogDensity",
    "OptionError",
    "PathfinderOptions",
    "Predictions",
    "RelativeChange",
    "StepInfo",
    "Summary",
    "SummaryRow",
    "adapt_lr",
    "build_result",
    "initial_point",
    "optimize",
    "run_method",
    "step",
]
