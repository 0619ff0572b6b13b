"""The exceptions and warnings every package shares (models, optim, diagnostics, cavi, vae), with messages that
name what is wrong. At the bottom of the import graph: imports nothing from varinf.

========================  ===================================================================================
``ModelError``            a model's declaration or log joint is unusable (names the latent, function or row)
``FitError``              optimization could not continue (the bound stayed non-finite after recoveries)
``OptionError``           an option no method takes, or one the chosen method does not take (names it and who
                          takes it); raised before any model evaluation
``ConvergenceWarning``    an iterative method stopped at its cap before its convergence criterion was met
``DiagnosticWarning``     PSIS says the fitted q is unreliable, or its draws may be off (k-hat, mean shift)
========================  ===================================================================================
"""

import inspect
import os
import warnings

__all__ = ["ConvergenceWarning", "DiagnosticWarning", "FitError", "ModelError", "OptionError", "warn"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


class ModelError(ValueError):
    """A model's declaration or log joint is unusable (names the latent and what to change)."""


class FitError(RuntimeError):
    """Optimization could not continue (e.g. the bound stayed non-finite after recovery attempts)."""


class OptionError(ValueError, TypeError):
    """An unknown option, or one the chosen method does not take: the message names it and the methods
    (or families) that take it."""


class ConvergenceWarning(UserWarning):
    """An iterative method stopped at its step cap before its convergence criterion was met."""


class DiagnosticWarning(UserWarning):
    """PSIS says the fitted q is an unreliable approximation of the posterior (or the check failed)."""


def warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` attributed to the first caller outside varinf (the user's line), however deep inside
    varinf the warning arises."""
    level, frame = 1, inspect.currentframe()
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=max(level, 1))
