"""varinf: variational inference in PyTorch.

Posterior VI (``fit``), CAVI/stochastic VI for conjugate models (``varinf.cavi``), VAEs (``varinf.vae``)
and rate-distortion codecs (``varinf.compression``). Conventions: loss = -bound; nats everywhere except
compression, which speaks bits.
"""

from . import distributed
from .api import fit, load
from .bridges import from_numpyro, from_pymc
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
    "StanModel",
    "distributed",
    "evidence",
    "fit",
    "from_numpyro",
    "from_pymc",
    "load",
    "load_example",
    "step",
]


def __getattr__(name: str):  # varinf.StanModel: the Stan bridge loads on first use
    if name == "StanModel":
        from .bridges import StanModel

        return StanModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
