"""The fitting methods, one file each: ``advi``, ``bam`` (``bam_lowrank`` beside it), ``pathfinder``, and ``auto``,
which composes them. Each module has the same shape (Blackjax's): a frozen ``Options`` dataclass validated on
construction, ``init`` / ``step`` over an explicit state (``step(state, ...) -> (state, info)``), and
``run(model, family, objective, options, config, family_options) -> MethodRun``; ``family_options(family)`` names
the family options it takes and ``resolve_family`` what ``family="auto"`` means for it. :mod:`varinf.optim.routing` sends
every keyword option of ``varinf.fit`` to the value that declares it, or refuses it with its name (:mod:`..routing`).
"""

from ..routing import MethodOptions, Routed, route_options
from . import advi, auto, bam, pathfinder
from .advi import ADVIOptions
from .auto import AutoOptions
from .bam import BaMOptions
from .pathfinder import PathfinderOptions

__all__ = [
    "METHODS",
    "ADVIOptions",
    "AutoOptions",
    "BaMOptions",
    "MethodOptions",
    "PathfinderOptions",
    "Routed",
    "route_options",
]

# name -> method module (Options, family_options, resolve_family, run)
METHODS = {"auto": auto, "advi": advi, "bam": bam, "pathfinder": pathfinder}
