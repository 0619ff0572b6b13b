"""varinf: variational inference in PyTorch.

Posterior VI (``fit``), CAVI/stochastic VI for conjugate models (``varinf.cavi``), VAEs (``varinf.vae``)
and rate-distortion codecs (``varinf.compression``). Conventions: loss = -bound; nats everywhere except
compression, which speaks bits.
"""

from . import distributed
from .api import fit, load
from .diagnostics import evidence
from .errors import ConvergenceWarning, FitError, OptionError
from .families import AmortizedNormal, Flow, FullRank, LowRank, MeanField
from .models import Latent, Model, ModelError, load_example
from .objectives import ELBO, IWAE, Renyi
from .optim import FitResult, step

__version__ = "0.1.0"

__all__ = [
    "ELBO",
    "IWAE",
    "AmortizedNormal",
    "ConvergenceWarning",
    "FitError",
    "FitResult",
    "Flow",
    "FullRank",
    "Latent",
    "LowRank",
    "MeanField",
    "Model",
    "ModelError",
    "OptionError",
    "Renyi",
    "distributed",
    "evidence",
    "fit",
    "load",
    "load_example",
    "step",
]
