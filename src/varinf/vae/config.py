"""What a VAE is made of, as a JSON-serializable value (saved beside every checkpoint).

Presets (``VAEConfig.preset(name)``):

=================  ================================================================================
``iwae1``          IWAE paper, one stochastic layer: 784-200-200-50 tanh MLPs, Bernoulli likelihood
``iwae2``          IWAE paper, two stochastic layers: 200-200 / 100 and 100-100 / 50
``conv``           small convolutional encoder/decoder, 32 latents
``logistic``       the ``iwae1`` MLPs with an 8-bit discretized-logistic likelihood
=================  ================================================================================
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["VAEConfig"]

_ARCHITECTURES = ("mlp", "conv")


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, list | tuple) else x


@dataclass(frozen=True)
class VAEConfig:
    """Architecture of a VAE.

    Args:
        data_shape: shape of one observation, e.g. ``(1, 28, 28)``.
        likelihood: ``"bernoulli"`` (binarized), ``"logistic"`` (8-bit discretized logistic) or ``"gaussian"``.
        architecture: ``"mlp"`` or ``"conv"``.
        latents: latent sizes per stochastic layer, bottom first: ``(50,)`` or ``(100, 50)`` (MLP only).
        hidden: hidden layer sizes per stochastic layer (MLP), e.g. ``((200, 200), (100, 100))``.
        activation: ``"tanh"`` (IWAE paper), ``"relu"``, ``"elu"`` or ``"silu"``.
        prior: ``"normal"``, ``"vamp"`` or ``"flow"`` (two stochastic layers always use their top-down prior).
        prior_components: VampPrior pseudo-inputs.
        flow_transforms: flow prior layers.
    """

    data_shape: tuple[int, ...] = (1, 28, 28)
    likelihood: str = "bernoulli"
    architecture: str = "mlp"
    latents: tuple[int, ...] = (50,)
    hidden: tuple[tuple[int, ...], ...] = ((200, 200),)
    activation: str = "tanh"
    prior: str = "normal"
    prior_components: int = 500
    flow_transforms: int = 3

    def __post_init__(self):
        from .likelihoods import LIKELIHOODS

        object.__setattr__(self, "data_shape", tuple(int(s) for s in self.data_shape))
        object.__setattr__(self, "latents", tuple(int(s) for s in self.latents))
        object.__setattr__(self, "hidden", _tuples(self.hidden))
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {self.likelihood!r}; choose from {sorted(LIKELIHOODS)}")
        if self.architecture not in _ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.architecture!r}; choose from {_ARCHITECTURES}")
        if self.prior not in ("normal", "vamp", "flow"):
            raise ValueError(f"unknown prior {self.prior!r}; choose from normal, vamp, flow")
        if len(self.latents) not in (1, 2) or min(self.latents) < 1:
            raise ValueError(f"latents must be one or two positive sizes, got {self.latents}")
        if len(self.latents) == 2 and self.architecture != "mlp":
            raise ValueError("two stochastic layers are implemented for the MLP architecture only")
        if self.architecture == "mlp" and len(self.hidden) != len(self.latents):
            raise ValueError(
                f"need one hidden-size tuple per stochastic layer: latents {self.latents}, hidden {self.hidden}"
            )

    @property
    def latent_dim(self) -> int:
        return sum(self.latents)

    @property
    def num_dims(self) -> int:
        n = 1
        for s in self.data_shape:
            n *= s
        return n

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> VAEConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown VAE config keys {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)

    @classmethod
    def preset(cls, name: str, **overrides) -> VAEConfig:
        presets = {
            "iwae1": {},
            "iwae2": {"latents": (100, 50), "hidden": ((200, 200), (100, 100))},
            "conv": {"architecture": "conv", "latents": (32,), "hidden": ((256,),), "activation": "elu"},
            "logistic": {"likelihood": "logistic"},
        }
        if name not in presets:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(presets)}")
        return cls(**{**presets[name], **overrides})
