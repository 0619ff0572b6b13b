"""The model registry: posteriordb model name -> :class:`~varinf.posteriordb.base.PosteriordbModel` class.

Keyed by posteriordb's *model* name (``posterior.json``'s ``model_name``), so one class serves every data
set posteriordb pairs with that model (``blr`` serves ``sblrc-blr`` and ``sblri-blr``; ``nes`` serves
``nes1972-nes`` ... ``nes2000-nes``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import PosteriordbModel
from .eight_schools import EightSchoolsCentered, EightSchoolsNoncentered
from .gp import GPPoisRegr, GPRegr
from .hmm import HMMDrive0, HMMExample
from .mixture import LowDimGaussMix
from .regression import Blr, Diamonds, KidscoreInteraction, KidscoreInteractionZ, LogearnInteraction, Nes
from .timeseries import ArK, Garch11

if TYPE_CHECKING:
    from .loader import Posterior

__all__ = ["MODELS", "REFERENCE_POSTERIORS", "build_model"]

MODELS: dict[str, type[PosteriordbModel]] = {
    cls.posteriordb_name: cls
    for cls in (
        ArK,
        Blr,
        Diamonds,
        EightSchoolsCentered,
        EightSchoolsNoncentered,
        GPPoisRegr,
        GPRegr,
        Garch11,
        HMMDrive0,
        HMMExample,
        KidscoreInteraction,
        KidscoreInteractionZ,
        LogearnInteraction,
        LowDimGaussMix,
        Nes,
    )
}

# The 16 posteriors of ../shared/data/posteriordb that have reference draws (all implemented).
REFERENCE_POSTERIORS = (
    "arK-arK",
    "bball_drive_event_0-hmm_drive_0",
    "diamonds-diamonds",
    "earnings-logearn_interaction",
    "eight_schools-eight_schools_centered",
    "eight_schools-eight_schools_noncentered",
    "garch-garch11",
    "gp_pois_regr-gp_pois_regr",
    "gp_pois_regr-gp_regr",
    "hmm_example-hmm_example",
    "kidiq-kidscore_interaction",
    "kidiq_with_mom_work-kidscore_interaction_z",
    "low_dim_gauss_mix-low_dim_gauss_mix",
    "nes2000-nes",
    "sblrc-blr",
    "sblri-blr",
)


def build_model(posterior: Posterior) -> PosteriordbModel:
    """The varinf model of a :class:`~varinf.posteriordb.loader.Posterior` (``load_posterior(name).model()``
    is the same from a name).

    Raises ``KeyError`` naming the implemented models when posteriordb's model has no implementation.
    """
    cls = MODELS.get(posterior.model_name)
    if cls is None:
        raise KeyError(
            f"posteriordb model {posterior.model_name!r} (posterior {posterior.name!r}) is not implemented in "
            f"varinf; implemented: {', '.join(sorted(MODELS))}"
        )
    model = cls.from_data(posterior.data)
    model.name = posterior.name
    return model
