r"""The variational autoencoder: prior :math:`p(z)`, encoder :math:`q(z\mid x)`, decoder :math:`p(x\mid z)`.

.. math::
    \mathcal{L}(x) = E_{q(z\mid x)}[\log p(x\mid z)] - KL(q(z\mid x)\,\|\,p(z)) = -(\text{distortion} + \text{rate})

The three parts are exposed as plain torch Distributions (what an entropy coder or any other consumer
needs): ``vae.q(x)`` (batch ``(B,)``, event ``(D,)``), ``vae.p_z()`` (event ``(D,)``) and ``vae.p_x(z)``
(batch ``z.shape[:-1]``, event ``data_shape``). Training reuses the core objectives
(:class:`varinf.objectives.ELBO`, ``IWAE``): ``vae(x, objective)`` is ``objective.loss(q, log p(x|.), prior)``.

``x`` is always in the likelihood's data representation (see :mod:`varinf.vae.likelihoods`); turn uint8
images into it with ``vae.likelihood.prepare(images)``.

Example:
    >>> import torch
    >>> from varinf.objectives import IWAE
    >>> from varinf.vae import VAE, VAEConfig
    >>> vae = VAE.from_config(VAEConfig(data_shape=(1, 4, 4), latents=(2,), hidden=((8,),)))
    >>> x = vae.likelihood.prepare(torch.randint(0, 256, (3, 1, 4, 4), dtype=torch.uint8))
    >>> vae(x, IWAE(num_particles=5)).bound.shape
    torch.Size([3])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from ..families import AbstractFamily, AmortizedNormal
from .config import VAEConfig
from .distributed import Shard
from .hierarchy import TwoLayerEncoder, TwoLayerPrior
from .likelihoods import AbstractLikelihood, make_likelihood
from .networks import ConvDecoder, ConvEncoder, mlp_decoder, mlp_encoder
from .priors import FlowPrior, StandardNormalPrior, VampPrior

__all__ = ["VAE"]


class _Head(nn.Module):
    """The first ``n`` latent coordinates (the decoder of a two-layer model reads :math:`z_1` only)."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def forward(self, z: Tensor) -> Tensor:
        return z[..., : self.n]


class VAE(nn.Module):
    """A VAE from its parts (or :meth:`from_config`, which also makes it savable).

    Args:
        encoder: amortized family; ``encoder(normalized x)`` returns :math:`q(z\\mid x)` over :math:`\\mathbb{R}^D`.
        decoder: network ``(*batch, D) -> (*batch, P, *data_shape)``.
        likelihood: turns decoder output into :math:`p(x\\mid z)`.
        prior: module with ``prior(encoder)`` returning :math:`p(z)`.
        data_shape: shape of one observation.
    """

    def __init__(
        self,
        encoder: AbstractFamily,
        decoder: nn.Module,
        likelihood: AbstractLikelihood,
        prior: nn.Module,
        data_shape: tuple[int, ...],
        config: VAEConfig | None = None,
    ):
        super().__init__()
        self.encoder, self.decoder, self.likelihood, self.prior = encoder, decoder, likelihood, prior
        self.data_shape = tuple(data_shape)
        self.config = config

    @classmethod
    def from_config(cls, config: VAEConfig) -> VAE:
        ds, lat = config.data_shape, config.latents
        lik = make_likelihood(config.likelihood, data_dims=len(ds))
        P = lik.num_params
        if len(lat) == 2:
            encoder = TwoLayerEncoder(ds, lat, config.hidden, config.activation)
            decoder = nn.Sequential(_Head(lat[0]), mlp_decoder(ds, config.hidden[0], lat[0], P, config.activation))
            prior = TwoLayerPrior(lat, config.hidden[1], config.activation)
        else:
            D = lat[0]
            if config.architecture == "conv":
                hid = config.hidden[0][0] if config.hidden and config.hidden[0] else 256
                encoder = AmortizedNormal(ConvEncoder(ds, D, hidden=hid), D)
                decoder = ConvDecoder(ds, D, P, hidden=hid)
            else:
                encoder = AmortizedNormal(mlp_encoder(ds, config.hidden[0], D, config.activation), D)
                decoder = mlp_decoder(ds, config.hidden[0], D, P, config.activation)
            if config.prior == "vamp":
                prior = VampPrior(D, ds, config.prior_components)
            elif config.prior == "flow":
                prior = FlowPrior(D, config.flow_transforms)
            else:
                prior = StandardNormalPrior(D)
        return cls(encoder, decoder, lik, prior, ds, config)

    @property
    def latent_dim(self) -> int:
        return self.encoder.dim

    @property
    def num_dims(self) -> int:
        """Number of observed dimensions (pixels x channels), for bits/dim."""
        return int(torch.Size(self.data_shape).numel())

    def _check(self, x: Tensor) -> None:
        if x.shape[1:] != self.data_shape:
            raise ValueError(
                f"expected observations of shape (B, {', '.join(map(str, self.data_shape))}), got {tuple(x.shape)}"
            )

    def q(self, x: Tensor) -> Distribution:
        """Encoder :math:`q(z\\mid x)`: batch ``(B,)``, event ``(D,)``."""
        self._check(x)
        return self.encoder(self.likelihood.normalize(x))

    def p_z(self) -> Distribution:
        """Prior :math:`p(z)`, event ``(D,)``."""
        return self.prior(self.encoder)

    def p_x(self, z: Tensor) -> Distribution:
        """Decoder :math:`p(x\\mid z)`: batch ``z.shape[:-1]``, event ``data_shape``."""
        return self.likelihood(self.decoder(z))

    def log_likelihood(self, x: Tensor):
        """:math:`z \\mapsto \\log p(x\\mid z)`, ``(S, B, D) -> (S, B)`` (the ``log_p`` of the core objectives)."""
        return lambda z: self.p_x(z).log_prob(x)

    def forward(self, x: Tensor, objective, shard: Shard | None = None):
        """``objective.loss(q(x), log p(x|.), p(z))`` -> :class:`varinf.objectives.BoundEstimate` (loss = -bound, nats).

        ``shard`` draws this process's rows of whole-batch noise (data-parallel training, see
        :mod:`varinf.vae.distributed`).
        """
        q = self.q(x)
        if shard is not None:
            q = shard.wrap(q)
        return objective.loss(q, self.log_likelihood(x), self.p_z())

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """``n`` images (uint8, ``(n, *data_shape)``): the mean of :math:`p(x\\mid z)` at :math:`z\\sim p(z)`."""
        z = self.p_z().sample((n,))
        return self.likelihood.to_image(self.p_x(z).mean)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """uint8 reconstructions: the mean of :math:`p(x\\mid z)` at one draw :math:`z\\sim q(z\\mid x)`."""
        return self.likelihood.to_image(self.p_x(self.q(x).sample()).mean)

    @torch.no_grad()
    def latent_means(self, x: Tensor) -> Tensor:
        """Posterior means (for latent maps); for two layers, the first layer's mean."""
        q = self.q(x)
        q = getattr(q, "first", q)
        return q.mean
