"""Variational autoencoders: encoders are amortized families, training uses the core objectives (see README.md).

Conventions: ``loss = -bound`` (batch mean, nats); rate = KL(q(z|x) || p(z)), distortion = -E_q log p(x|z),
ELBO = -(rate + distortion); bits/dim = nats / (D ln 2).
"""

from .checkpoint import CheckpointError, load_vae, save_vae
from .config import VAEConfig
from .discretized_logistic import DiscretizedLogistic
from .distributed import Shard, World, init_distributed
from .evaluation import Evaluation, evaluate
from .hierarchy import GaussianChain, TwoLayerEncoder, TwoLayerPrior
from .likelihoods import BernoulliLikelihood, DiscretizedLogisticLikelihood, GaussianLikelihood, make_likelihood
from .model import VAE
from .objectives import FreeBits, make_objective
from .priors import FlowPrior, StandardNormalPrior, VampPrior
from .training import TrainConfig, TrainResult, ValidationRecord, train

__all__ = [
    "VAE",
    "BernoulliLikelihood",
    "CheckpointError",
    "DiscretizedLogistic",
    "DiscretizedLogisticLikelihood",
    "Evaluation",
    "FlowPrior",
    "FreeBits",
    "GaussianChain",
    "GaussianLikelihood",
    "Shard",
    "StandardNormalPrior",
    "TrainConfig",
    "TrainResult",
    "TwoLayerEncoder",
    "TwoLayerPrior",
    "VAEConfig",
    "ValidationRecord",
    "VampPrior",
    "World",
    "evaluate",
    "init_distributed",
    "load_vae",
    "make_likelihood",
    "make_objective",
    "save_vae",
    "train",
]
