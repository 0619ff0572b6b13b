"""Chores every package shares, at the bottom of the import graph (imports nothing else from varinf).

- :mod:`.files`: atomic writes (:func:`atomic_output`, :func:`atomic_write_bytes`, :func:`atomic_write_text`) and
  :func:`refuse_input_as_output`;
- :mod:`.safetensors_io`: checksummed safetensors + JSON metadata (:func:`write_safetensors`,
  :func:`read_safetensors`, :class:`SafetensorsError`);
- :mod:`.threads`: torch's and numpy's BLAS thread counts for a block (:func:`num_threads`, :func:`blas_threads`);
- :mod:`.random`: a seeded block that leaves torch's global RNG untouched (:func:`seeded`);
- :mod:`.progress_bars`: progress bars for long phases, only on a terminal (``from varinf.utils.progress_bars import
  progress, track``).
"""

from .files import atomic_output, atomic_write_bytes, atomic_write_text, refuse_input_as_output
from .random import seeded
from .safetensors_io import SafetensorsError, read_safetensors, tensor_digest, write_safetensors
from .threads import blas_threads, num_threads

__all__ = [
    "SafetensorsError",
    "atomic_output",
    "atomic_write_bytes",
    "atomic_write_text",
    "blas_threads",
    "num_threads",
    "read_safetensors",
    "refuse_input_as_output",
    "seeded",
    "tensor_digest",
    "write_safetensors",
]
