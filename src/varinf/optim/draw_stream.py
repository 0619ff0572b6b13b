r"""Many draws of q in bounded memory: chunks under their own seeds, drawn again when needed, never all at once.

The diagnostics judge q from ``S`` draws (4000 by default) and the summary reports per-scalar moments and
quantiles from them. ``S x D`` numbers are 128 MB at D = 4,000 and 3.2 GB at D = 100,000 (float64), and every
derived tensor (constrained values, squares, weighted copies) costs as much again. :class:`DrawStream` makes the
draws in chunks of at most ``CHUNK_ELEMENTS / D`` rows, chunk ``c`` under the seed ``(seed, c)``, so any chunk can
be drawn again bit for bit; when ``S x D <= MAX_KEPT`` the unconstrained draws are simply kept. Consumers make
one pass per statistic (:func:`streamed_moments`: moments, then histograms for the quantiles), so memory is
``O(chunk x D + 64 D)`` whatever D is.

Shapes: unconstrained chunks ``(n, D)``; constrained chunks ``{latent: (n, *shape)}``; weights ``(S,)``
normalized. Units: those of the draws. Weighted moments of gathered draws: :mod:`varinf.utils.weighted`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor
from torch.distributions import Distribution

from ..utils import seeded
from ..utils.weighted import weighted_mean_sd, weighted_quantiles

__all__ = ["CHUNK_ELEMENTS", "MAX_KEPT", "DrawStream", "streamed_moments"]

CHUNK_ELEMENTS = 2**22  # numbers per chunk of draws (32 MB in float64)
MAX_KEPT = 2**24  # S x D up to which the unconstrained draws stay in memory (128 MB in float64)
PROBE_ROWS = 256  # rows of the first piece, which counts the constrained scalars per draw
BLOCK_ELEMENTS = 2**23  # S x scalars up to which the summary gathers every draw (exact quantiles; 64 MB)

Chunks = Callable[[], Iterator[tuple[slice, dict[str, Tensor]]]]


def _chunk_seed(seed: int, c: int) -> int:
    return (seed * 1_000_003 + c) % (2**63 - 1)


class DrawStream:
    """``num_draws`` draws of ``q`` (event shape ``(model.dim,)``), chunk ``c`` drawn under seed ``(seed, c)``.

    ``seed=None`` takes a fresh seed from torch's global RNG (advancing it). Zuko flows draw with
    ``rsample_and_log_prob`` (one pass) in the first pass and in replays alike, so replays repeat the draws."""

    def __init__(self, model, q: Distribution, num_draws: int, seed: int | None = 0, chunk: int | None = None,
                 max_kept: int | None = None):  # fmt: skip
        self.model, self.q, self.num_draws = model, q, int(num_draws)
        D = int(model.dim)
        self.seed = int(torch.randint(0, 2**62, ())) if seed is None else int(seed)
        self.chunk = int(chunk) if chunk is not None else max(1, min(self.num_draws, CHUNK_ELEMENTS // max(D, 1)))
        self.keep = self.num_draws * D <= (MAX_KEPT if max_kept is None else max_kept)
        self._kept: Tensor | None = None

    @property
    def num_chunks(self) -> int:
        return -(-self.num_draws // self.chunk)

    def rows(self, c: int) -> slice:
        return slice(c * self.chunk, min((c + 1) * self.chunk, self.num_draws))

    @torch.no_grad()
    def draw(self, c: int, log_prob: bool = True) -> tuple[Tensor, Tensor | None]:
        """Chunk ``c``: draws ``(n, D)`` and their log density under q ``(n,)`` (None unless ``log_prob``)."""
        n = self.rows(c).stop - self.rows(c).start
        with seeded(_chunk_seed(self.seed, c)):
            if hasattr(self.q, "rsample_and_log_prob"):  # zuko flows: one pass, no inverse
                return self.q.rsample_and_log_prob((n,))
            u = self.q.sample((n,))
            return u, (self.q.log_prob(u) if log_prob else None)

    def keep_chunks(self, chunks: list[Tensor]) -> None:
        """Store the first pass's chunks (only when ``keep``)."""
        if self.keep:
            self._kept = torch.cat(chunks)

    @torch.no_grad()
    def unconstrained_chunks(self) -> Iterator[tuple[slice, Tensor]]:
        for c in range(self.num_chunks):
            rows = self.rows(c)
            yield rows, (self._kept[rows] if self._kept is not None else self.draw(c, log_prob=False)[0])

    @torch.no_grad()
    def constrained_chunks(self, derived: bool = False) -> Iterator[tuple[slice, dict[str, Tensor]]]:
        """``{latent: (n, *shape)}`` per piece of a chunk, plus the model's derived quantities when ``derived``.
        Random derived quantities (a Stan program's generated quantities) draw under the chunk's own second seed,
        so a replay repeats them too.

        A chunk's rows are sized by D; the constrained values can be many more scalars per draw (transformed
        parameters, generated quantities: 5,044 for a program with D = 394), so each chunk is constrained in pieces
        of at most ``CHUNK_ELEMENTS / scalars`` rows, the scalars counted on the first ``PROBE_ROWS`` rows of
        chunk 0. The pieces are the same in every pass (replays draw the same random quantities)."""
        constrained = getattr(self.model, "constrained", None)
        cap = None  # rows per piece, known once the first piece is constrained (the same in every pass)
        for c, (rows, u) in enumerate(self.unconstrained_chunks()):
            with seeded(_chunk_seed(self.seed + 1, c)):
                a = 0
                while a < u.shape[0]:
                    b = min(u.shape[0], a + (PROBE_ROWS if cap is None else cap))
                    z = constrained(u[a:b]) if constrained is not None else self.model.constrain(u[a:b])[0]
                    if derived:
                        z = {**z, **self.model.derived_quantities(z)}
                    if cap is None:  # b > a: the piece has a row to count on
                        cap = max(1, CHUNK_ELEMENTS // max(sum(v[0].numel() for v in z.values()), 1))
                    yield slice(rows.start + a, rows.start + b), z
                    a = b

    def unconstrained(self) -> Tensor:
        """All draws ``(S, D)`` at once (the kept ones, or every chunk drawn again)."""
        if self._kept is not None:
            return self._kept
        return torch.cat([u for _, u in self.unconstrained_chunks()])

    def constrained(self, derived: bool = False) -> dict[str, Tensor]:
        """All constrained draws at once, ``{latent: (S, *shape)}``."""
        parts = [z for _, z in self.constrained_chunks(derived)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]} if parts else {}


def streamed_moments(chunks: Chunks, num_draws: int, qs: Tensor, w: Tensor | None = None,
                     max_elements: int | None = None) -> dict[str, tuple[Tensor, Tensor, Tensor]]:  # fmt: skip
    """Per-scalar mean, sd and quantiles of draws given chunk by chunk (``chunks()`` starts a new pass each call),
    weighted by normalized ``w`` ``(S,)`` or equally (then sd with S - 1 and quantiles as ``torch.quantile``).

    Returns ``{name: (mean (k,), sd (k,), quantiles (m, k))}`` with each latent flattened (row-major). When all
    ``S x scalars`` numbers fit in ``max_elements`` (default ``BLOCK_ELEMENTS``) they are gathered and the quantiles are exact; otherwise
    three passes with O(scalars x 64 x (m + 1)) memory: moments and ranges, a 64-bin histogram of each scalar,
    and a 64-bin histogram inside the bin holding each quantile, interpolated linearly (the quantile to 1/4096
    of the scalar's range, far below the Monte Carlo error of S draws)."""
    first = next(iter(chunks()))[1]
    names = list(first)
    sizes = [int(first[k].reshape(first[k].shape[0], -1).shape[1]) for k in names]
    flat = lambda z: torch.cat([z[k].double().reshape(z[k].shape[0], -1) for k in names], 1)
    if num_draws * sum(sizes) <= (BLOCK_ELEMENTS if max_elements is None else max_elements):
        mean, sd, qv = _block_moments(torch.cat([flat(z) for _, z in chunks()]), qs, w)
    else:
        mean, sd, qv = _histogram_moments(chunks, flat, num_draws, qs, w)
    out, o = {}, 0
    for k, size in zip(names, sizes):
        out[k] = (mean[o : o + size], sd[o : o + size], qv[:, o : o + size])
        o += size
    return out


BINS = 64


def _histogram_moments(chunks: Chunks, flat, S: int, qs: Tensor, w: Tensor | None):
    """Moments and quantiles in three passes (see :func:`streamed_moments`)."""
    weights = (w / w.sum()).double() if w is not None else torch.full((S,), 1.0 / S, dtype=torch.float64)
    shift = lo = hi = None
    s1 = s2 = 0.0
    for rows, z in chunks():  # pass 1: weighted sums (shifted by the first chunk's means), min and max
        x = flat(z)
        if shift is None:
            shift, lo, hi = x.mean(0), x.min(0).values, x.max(0).values
        y = x - shift
        wr = weights[rows].to(x)
        s1, s2 = s1 + wr @ y, s2 + wr @ y.square()
        lo, hi = torch.minimum(lo, x.min(0).values), torch.maximum(hi, x.max(0).values)
    mean = shift + s1
    var = (s2 - s1.square()).clamp_min(0)
    sd = (var * S / (S - 1)).sqrt() if w is None else var.sqrt()
    P = mean.numel()
    width = ((hi - lo) / BINS).clamp_min(1e-300)
    cols = torch.arange(P)
    coarse = torch.zeros(P * BINS, dtype=torch.float64)
    for rows, z in chunks():  # pass 2: a histogram of each scalar over its range
        x = flat(z)
        b = ((x - lo) / width).floor().long().clamp(0, BINS - 1)
        coarse.index_add_(0, (cols * BINS + b).reshape(-1), weights[rows].to(x)[:, None].expand_as(x).reshape(-1))
    cum = coarse.reshape(P, BINS).cumsum(1)
    levels = qs.double().tolist()
    bins = [torch.searchsorted(cum, torch.full((P, 1), q, dtype=cum.dtype)).clamp(max=BINS - 1) for q in levels]
    below = [torch.where(b > 0, cum.gather(1, (b - 1).clamp(min=0)), torch.zeros_like(cum[:, :1]))[:, 0] for b in bins]
    starts = [lo + b[:, 0] * width for b in bins]
    fine = [torch.zeros(P * BINS, dtype=torch.float64) for _ in levels]
    fine_width = width / BINS
    for rows, z in chunks():  # pass 3: inside the bin holding each quantile, a finer histogram
        x = flat(z)
        wx = weights[rows].to(x)[:, None].expand_as(x)
        for j in range(len(levels)):
            rel = (x - starts[j]) / fine_width
            inside = (rel >= 0) & (rel < BINS)
            f = rel.floor().long().clamp(0, BINS - 1)
            fine[j].index_add_(0, (cols * BINS + f)[inside], wx[inside])
    out = []
    for j, q in enumerate(levels):
        c = below[j][:, None] + fine[j].reshape(P, BINS).cumsum(1)  # CDF at the fine bins' right edges
        f = torch.searchsorted(c, torch.full((P, 1), q, dtype=c.dtype)).clamp(max=BINS - 1)
        c_hi = c.gather(1, f)[:, 0]
        c_lo = torch.where(f[:, 0] > 0, c.gather(1, (f - 1).clamp(min=0))[:, 0], below[j])
        t = ((q - c_lo) / (c_hi - c_lo).clamp_min(1e-300)).clamp(0, 1)
        out.append((starts[j] + (f[:, 0] + t) * fine_width).clamp(lo, hi))
    return mean, sd, torch.stack(out)


def _block_moments(v: Tensor, qs: Tensor, w: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    mean, sd = weighted_mean_sd(v, w)
    return mean, sd, weighted_quantiles(v, qs, w)
