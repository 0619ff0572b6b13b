"""posteriordb posteriors as varinf models, with a loader for posteriordb's files (see README.md here)."""

from .base import PosteriordbModel, stan_element_names
from .compare import ReferenceComparison, compare_to_reference
from .evaluate import PosteriorFit, fit_posterior
from .loader import Posterior, ReferenceDraws, default_root, list_posteriors, load_posterior
from .registry import MODELS, REFERENCE_POSTERIORS, build_model

__all__ = [
    "MODELS",
    "REFERENCE_POSTERIORS",
    "Posterior",
    "PosteriorFit",
    "PosteriordbModel",
    "ReferenceComparison",
    "ReferenceDraws",
    "build_model",
    "compare_to_reference",
    "default_root",
    "fit_posterior",
    "list_posteriors",
    "load_posterior",
    "stan_element_names",
]
