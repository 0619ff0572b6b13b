r"""``Plate``: a model's data — named tensors with one observation per row (dimension 0).

The plate is what subsampling, chunking and sharding act on: a minibatch is a set of rows, a chunk is a
run of rows, a process of a ``torchrun`` job holds a contiguous block of rows. NumPyro's ``plate`` keeps
the data size and the subsample scale in one object; here that object is the data itself.

::

    data = {"X": (N, d), "y": (N,)}        # every tensor: N rows (any trailing shape, any dtype)
    plate.rows(idx) -> {"X": (B, d), "y": (B,)}
    distributed: this process holds rows [offset, offset + size) of total rows (rank order = row order)

Tensors are buffers, so ``model.to(dtype/device)`` moves them (floating ones change dtype, integer
ones keep theirs).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch import Tensor, nn

from ..distributed import World, all_reduce_sum, world
from ..errors import ModelError

__all__ = ["Plate"]


class Plate(nn.Module):
    """Named data tensors sharing their first dimension (the observations).

    Args:
        data: ``{name: tensor}``; numpy arrays and lists are converted (lists of floats to the default dtype).
        distributed: the rows given are this process's block of a larger data set, in rank order (see
            :func:`varinf.distributed.shard_rows`); the total is summed over the processes of the job.
        owner: a label for error messages (the model's name).
    """

    def __init__(self, data: Mapping[str, Tensor], distributed: bool = False, owner: str = "model"):
        super().__init__()
        if not isinstance(data, Mapping) or not data:
            raise ModelError(f"{owner}: data must be a non-empty dict of tensors, got {type(data).__name__}")
        sizes = {}
        self.names: tuple[str, ...] = tuple(data)
        self.tensors = nn.Module()  # the buffers, in a module of their own: any name but nn.Module's own
        for name, v in data.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ModelError(f"{owner}: data name {name!r} is not a Python identifier")
            try:
                t = v if isinstance(v, Tensor) else torch.as_tensor(v)
            except (TypeError, ValueError, RuntimeError) as e:
                raise ModelError(f"{owner}: data[{name!r}] is not convertible to a tensor ({e})") from None
            if t.is_floating_point() and not isinstance(v, Tensor):
                t = t.to(torch.get_default_dtype())
            if t.dim() == 0:
                raise ModelError(f"{owner}: data[{name!r}] is a scalar; every data tensor needs the observations "
                                 "along dimension 0 (put constants in the model's code instead)")  # fmt: skip
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise ModelError(f"{owner}: data[{name!r}] contains NaN or infinite values")
            sizes[name] = int(t.shape[0])
            try:
                self.tensors.register_buffer(name, t)
            except KeyError:
                raise ModelError(f"{owner}: data name {name!r} is reserved; rename it") from None
        first = self.names[0]
        bad = [n for n in self.names if sizes[n] != sizes[first]]
        if bad:
            n = bad[0]
            raise ModelError(
                f"{owner}: data[{n!r}] has {sizes[n]} rows but data[{first!r}] has {sizes[first]}; every data tensor "
                "needs the same observations along dimension 0"
            )
        self.size = sizes[first]  # rows held by this process
        self.world = world() if distributed else World()
        counts = torch.zeros(self.world.size, dtype=torch.int64)
        counts[self.world.rank] = self.size
        all_reduce_sum(counts, self.world)
        self.total = int(counts.sum())  # rows in the whole data set
        self.offset = int(counts[: self.world.rank].sum())  # global index of this process's first row
        if self.total == 0:
            raise ModelError(f"{owner}: data has no rows")
        self._fingerprint = None
        if self.distributed:  # a collective: computed now, while every process is here (rank 0 alone may save)
            self.fingerprint()

    @property
    def distributed(self) -> bool:
        return self.world.size > 1

    @property
    def data(self) -> dict[str, Tensor]:
        """``{name: tensor}`` of this process's rows."""
        return {n: getattr(self.tensors, n) for n in self.names}

    def rows(self, index: Tensor | slice) -> dict[str, Tensor]:
        """The rows at local ``index`` (an index tensor or a slice) of every tensor."""
        if isinstance(index, Tensor):  # index_select: a fraction of advanced indexing's overhead
            return {n: torch.index_select(getattr(self.tensors, n), 0, index) for n in self.names}
        return {n: getattr(self.tensors, n)[index] for n in self.names}

    def chunks(self, rows_per_chunk: int) -> Iterator[dict[str, Tensor]]:
        """Consecutive runs of at most ``rows_per_chunk`` local rows (views, no copies)."""
        step = max(1, int(rows_per_chunk))
        for start in range(0, self.size, step):
            yield self.rows(slice(start, min(start + step, self.size)))

    def local(self, global_index: Tensor) -> Tensor:
        """The local positions of those of ``global_index`` that this process holds (order kept)."""
        if not self.distributed:
            return global_index
        keep = (global_index >= self.offset) & (global_index < self.offset + self.size)
        return global_index[keep] - self.offset

    def gather(self, global_index: Tensor) -> dict[str, Tensor]:
        """The rows at ``global_index`` on every process (rows held elsewhere are summed in), in that order."""
        if not self.distributed:
            return self.rows(global_index)
        keep = (global_index >= self.offset) & (global_index < self.offset + self.size)
        out = {}
        for n in self.names:
            v = getattr(self.tensors, n)
            buf = v.new_zeros((global_index.numel(), *v.shape[1:]), dtype=_summable(v.dtype))
            buf[keep] = v[global_index[keep] - self.offset].to(buf.dtype)
            out[n] = all_reduce_sum(buf, self.world).to(v.dtype)
        return out

    def fingerprint(self) -> dict[str, object]:
        """Names, dtypes, row shapes, total rows and float64 sums of every tensor (summed over processes):
        enough to tell whether a saved fit belongs to these data. Computed once (data are not meant to change)."""
        if self._fingerprint is not None:
            return self._fingerprint
        sums = torch.zeros(2 * len(self.names), dtype=torch.float64)
        for i, n in enumerate(self.names):
            for c in self.chunks(1 << 20):
                x = c[n].detach().to("cpu", torch.float64)
                sums[2 * i] += x.sum()
                sums[2 * i + 1] += x.square().sum()
        all_reduce_sum(sums, self.world)
        self._fingerprint = {
            "rows": self.total,
            "tensors": {
                n: {"dtype": str(getattr(self.tensors, n).dtype).replace("torch.", ""), "row_shape": list(getattr(self.tensors, n).shape[1:]),
                    "sum": sums[2 * i].item(), "sum_sq": sums[2 * i + 1].item()}
                for i, n in enumerate(self.names)
            },
        }  # fmt: skip
        return self._fingerprint

    def extra_repr(self) -> str:
        shapes = ", ".join(
            f"{n}: {tuple(getattr(self.tensors, n).shape[1:])} {str(getattr(self.tensors, n).dtype)[6:]}"
            for n in self.names
        )
        where = f", rows {self.offset}..{self.offset + self.size} on rank {self.world.rank}" if self.distributed else ""
        return f"{self.total} rows of {{{shapes}}}{where}"


def _summable(dtype: torch.dtype) -> torch.dtype:
    return torch.uint8 if dtype == torch.bool else dtype
