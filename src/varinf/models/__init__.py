"""Explicit models: named latents with supports, and a log joint (see README.md here)."""

from ..errors import ModelError
from .constraints import OrderedTransform, as_constraint, ordered_vector, positive_ordered_vector
from .examples import (
    EXAMPLES,
    EightSchools,
    GPRegression,
    LinearRegression,
    LogisticRegression,
    NormalGamma,
    NormalNormal,
    load_example,
)
from .foreign import AbstractEngine, ForeignModel, Variable
from .latent import Latent
from .model import Model
from .plate import Plate

__all__ = [
    "EXAMPLES",
    "AbstractEngine",
    "EightSchools",
    "ForeignModel",
    "GPRegression",
    "Latent",
    "LinearRegression",
    "LogisticRegression",
    "Model",
    "ModelError",
    "NormalGamma",
    "NormalNormal",
    "OrderedTransform",
    "Plate",
    "Variable",
    "as_constraint",
    "load_example",
    "ordered_vector",
    "positive_ordered_vector",
]
