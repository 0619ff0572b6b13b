r"""Step sizes for stochastic VI."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RobbinsMonro"]


@dataclass(frozen=True)
class RobbinsMonro:
    r"""The SVI step size :math:`\rho_t = (\tau_0 + t)^{-\kappa}`, :math:`t = 1, 2, \ldots`
    (Hoffman, Blei, Wang & Paisley 2013, arXiv:1206.7051, eq. 26).

    :math:`\kappa \in (0.5, 1]` makes :math:`\sum\rho_t = \infty`, :math:`\sum\rho_t^2 < \infty`;
    :math:`\tau_0 \ge 0` down-weights the first, noisy iterations.

    Example::

        >>> RobbinsMonro(offset=10.0, decay=0.7)(1)  # doctest: +ELLIPSIS
        0.186...
    """

    offset: float = 10.0
    decay: float = 0.7

    def __post_init__(self):
        if not 0.5 < self.decay <= 1.0:
            raise ValueError(f"learning_decay (kappa) must lie in (0.5, 1], got {self.decay!r}")
        if not self.offset >= 0.0:
            raise ValueError(f"learning_offset (tau0) must be >= 0, got {self.offset!r}")

    def __call__(self, t: int) -> float:
        if t < 1:
            raise ValueError(f"SVI steps are numbered from 1, got {t}")
        return float((self.offset + t) ** (-self.decay))
