"""CAVI and stochastic VI for conjugate-exponential models: Bayesian GMM and LDA (see README.md here).

Importing this package registers the Wishart and Normal-Wishart KL divergences with
``torch.distributions.kl_divergence``.
"""

from .clustering import kmeans, kmeans_plus_plus
from .counts import DocTermCounts
from .expfam import AbstractConjugate, ConjugateDirichlet, ConjugateNormalWishart, NormalWishartStats
from .gaussian_data import GaussianData
from .gmm import BayesianGaussianMixture
from .kl import kl_normal_wishart, kl_wishart
from .lda import LatentDirichletAllocation
from .lda_estep import LDALocalResult, lda_e_step
from .normal_wishart import NormalWishart, bartlett_sample, expected_logdet, mvdigamma, pack, unpack
from .schedule import RobbinsMonro

__all__ = [
    "AbstractConjugate",
    "BayesianGaussianMixture",
    "ConjugateDirichlet",
    "ConjugateNormalWishart",
    "DocTermCounts",
    "GaussianData",
    "LDALocalResult",
    "LatentDirichletAllocation",
    "NormalWishart",
    "NormalWishartStats",
    "RobbinsMonro",
    "bartlett_sample",
    "expected_logdet",
    "kl_normal_wishart",
    "kl_wishart",
    "kmeans",
    "kmeans_plus_plus",
    "lda_e_step",
    "mvdigamma",
    "pack",
    "unpack",
]
