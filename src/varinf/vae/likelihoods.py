r"""Decoder likelihoods :math:`p(x\mid z)`: how a decoder's output becomes a distribution over images.

A decoder network produces ``h`` of shape ``(*batch, num_params, *data_shape)``; a likelihood turns it into
a torch Distribution with event shape ``data_shape``. Each likelihood also fixes the *data representation*
it scores (from uint8 images ``(N, C, H, W)``):

============================  ===============================  =======================================
likelihood                    data it scores                   nats it reports
============================  ===============================  =======================================
``BernoulliLikelihood``       binarized pixels in {0, 1}       :math:`-\log P(x)` of the binary image
``DiscretizedLogisticLik.``   8-bit values 0..255 (floats)     :math:`-\log P(x)` of the 8-bit image
``GaussianLikelihood``        dequantized :math:`(k+u)/256`    :math:`-\log p(x) + D\log 256` (see below)
============================  ===============================  =======================================

Honest likelihoods: a Gaussian is a *density*, so its nats are not a probability of the 8-bit image. With
uniform dequantization :math:`x = (k + u)/256`, :math:`\log P(k) \ge E_u[\log p(x)] - D\log 256` (Theis et
al. 2016, arXiv:1511.01844), hence :attr:`nats_offset` ``= D log 256`` turns a Gaussian bound into an upper
bound on the discrete NLL, comparable with the other two.
"""

from __future__ import annotations

import abc
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Bernoulli, Distribution, Independent, Normal

from ..data.mnist import dynamic_binarize
from .discretized_logistic import DiscretizedLogistic

__all__ = [
    "LIKELIHOODS",
    "AbstractLikelihood",
    "BernoulliLikelihood",
    "DiscretizedLogisticLikelihood",
    "GaussianLikelihood",
    "make_likelihood",
]


class AbstractLikelihood(nn.Module, abc.ABC):
    """Maps decoder features ``(*batch, num_params, *data_shape)`` to :math:`p(x\\mid z)`."""

    num_params: int = 1

    @abc.abstractmethod
    def forward(self, h: Tensor) -> Distribution:
        """The distribution, event shape ``h.shape[-len(data_shape):]``."""

    @abc.abstractmethod
    def prepare(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """uint8 images -> the float data this likelihood scores (random for training: fresh binarization or
        dequantization noise drawn from ``generator``)."""

    def normalize(self, x: Tensor) -> Tensor:
        """Data -> the encoder's input (values of order one)."""
        return x

    def nats_offset(self, num_dims: int) -> float:
        """Nats added to :math:`-\\log p(x)` to get a discrete NLL of the 8-bit (or binary) image."""
        return 0.0

    def to_image(self, x: Tensor) -> Tensor:
        """Data in this likelihood's representation -> uint8 image values for plotting."""
        return x.clamp(0, 255).round().to(torch.uint8)

    def extra_repr(self) -> str:
        return f"num_params={self.num_params}"


class BernoulliLikelihood(AbstractLikelihood):
    """:math:`p(x\\mid z) = \\prod_i \\mathrm{Bernoulli}(x_i; \\sigma(h_i))` on binarized images."""

    num_params = 1

    def __init__(self, data_dims: int = 3):
        super().__init__()
        self.data_dims = int(data_dims)

    def forward(self, h: Tensor) -> Distribution:
        return Independent(Bernoulli(logits=h.squeeze(-self.data_dims - 1), validate_args=False), self.data_dims)

    def prepare(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return dynamic_binarize(images, generator)

    def to_image(self, x: Tensor) -> Tensor:
        return (x * 255).clamp(0, 255).round().to(torch.uint8)


class GaussianLikelihood(AbstractLikelihood):
    """Per-pixel :math:`N(h_0, \\mathrm{softplus}(h_1) + s_{min})` on dequantized images :math:`(k+u)/256`."""

    num_params = 2

    def __init__(self, data_dims: int = 3, min_scale: float = 1e-3):
        super().__init__()
        self.data_dims, self.min_scale = int(data_dims), float(min_scale)

    def forward(self, h: Tensor) -> Distribution:
        loc, raw = h.unbind(-self.data_dims - 1)
        return Independent(Normal(loc, F.softplus(raw) + self.min_scale, validate_args=False), self.data_dims)

    def prepare(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if images.dtype != torch.uint8:
            raise ValueError(f"expected uint8 images (0..255), got {images.dtype}")
        u = torch.rand(images.shape, generator=generator)
        return (images.float() + u) / 256.0

    def normalize(self, x: Tensor) -> Tensor:
        return 2 * x - 1

    def nats_offset(self, num_dims: int) -> float:
        return num_dims * math.log(256.0)

    def to_image(self, x: Tensor) -> Tensor:
        return (x * 256).clamp(0, 255).floor().to(torch.uint8)


class DiscretizedLogisticLikelihood(AbstractLikelihood):
    """Per-pixel :class:`DiscretizedLogistic` (location :math:`h_0`, scale :math:`e^{h_1}` clamped) on 8-bit values."""

    num_params = 2

    def __init__(self, data_dims: int = 3, min_log_scale: float = -7.0):
        super().__init__()
        self.data_dims, self.min_log_scale = int(data_dims), float(min_log_scale)

    def forward(self, h: Tensor) -> Distribution:
        loc, log_scale = h.unbind(-self.data_dims - 1)
        return Independent(DiscretizedLogistic(loc, log_scale.clamp(min=self.min_log_scale).exp()), self.data_dims)

    def prepare(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if images.dtype != torch.uint8:
            raise ValueError(f"expected uint8 images (0..255), got {images.dtype}")
        return images.float()

    def normalize(self, x: Tensor) -> Tensor:
        return x / 127.5 - 1


LIKELIHOODS = {
    "bernoulli": BernoulliLikelihood,
    "gaussian": GaussianLikelihood,
    "logistic": DiscretizedLogisticLikelihood,
}


def make_likelihood(name: str, data_dims: int = 3) -> AbstractLikelihood:
    """``"bernoulli"``, ``"gaussian"`` or ``"logistic"`` (discretized logistic, 8-bit)."""
    if name not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {name!r}; choose from {sorted(LIKELIHOODS)}")
    return LIKELIHOODS[name](data_dims=data_dims)
