"""Exceptions with messages that name what is wrong."""

__all__ = ["ModelError"]


class ModelError(ValueError):
    """A model's declaration or log joint is unusable (names the latent and what to change)."""
