"""Variational objectives and gradient estimators (see README.md here). loss = -bound, nats."""

from .baselines import EMABaseline, leave_one_out
from .bounds import ELBO, IWAE, Renyi
from .control_variate import ControlVariateELBO
from .draws import GRADIENTS, draw
from .estimate import BoundEstimate

__all__ = [
    "ELBO",
    "GRADIENTS",
    "IWAE",
    "BoundEstimate",
    "ControlVariateELBO",
    "EMABaseline",
    "Renyi",
    "draw",
    "leave_one_out",
]
