"""Warnings and errors raised while optimizing."""

__all__ = ["ConvergenceWarning", "FitError"]


class ConvergenceWarning(UserWarning):
    """The optimizer stopped at its step cap before its convergence criterion was met."""


class FitError(RuntimeError):
    """Optimization could not continue (e.g. the bound stayed non-finite after recovery attempts)."""
