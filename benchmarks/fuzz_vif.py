"""Fuzzing the .vif decoders: mutated files through the public decode functions, both content kinds.

Every input must be refused with :class:`~varinf.compression.FormatError` (the one documented error type) or
decode to an array of the declared shape (the unmutated seed files: exactly their original output); anything
else (another exception, a wrong shape, a dead or hung process) is a failure. Per input we record the time and,
in the worker processes of a full run, the peak resident memory (Linux ``VmHWM``, reset before every input).

Inputs are generated deterministically from ``(seed, target, index)``: the first 3,072 of every target set each
of the magic, version and kind bytes (offsets 0-5) to all 256 values, with and without a recomputed CRC; the
rest mix bit flips, truncations, insertions, length fields, header and meta fields set to boundary values
(crafted headers: CRC recomputed), declared sizes drawn log-uniformly up to 2**18, payload words changed,
dropped or added, splices of two files and random bytes. *Crafted header*: the CRC is valid and the header
(everything before the payload) differs from the seed's.

Run (one core, in the background; resumable: finished chunks are kept under ``runs/fuzz_vif/``, so running the
same command again continues, and ``--chunks A:B`` runs a piece)::

    taskset -c 0 env OMP_NUM_THREADS=1 nohup python benchmarks/fuzz_vif.py --inputs 1000000 > runs/fuzz_vif.log 2>&1 &
    python benchmarks/fuzz_vif.py --report      # chunks -> benchmarks/results/fuzz_vif.{json,md}

A worker process runs the inputs; the parent restarts it after a hang (``--hang`` CPU seconds on one input, or
20 times that in wall-clock time) or a death, recording the input. The default test run has a smaller in-process slice
(``tests/compression/test_codec_fuzz.py``). Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import platform
import random
import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
STATE = Path(__file__).resolve().parents[1] / "runs" / "fuzz_vif"
HEAD = 20  # magic 4, version 1, kind 1, meta length 2, model id 8, table digest 4
SYSTEMATIC = 6 * 256 * 2  # every value of bytes 0-5, without and with the CRC recomputed
GOAL_SECONDS, GOAL_MB = 1.0, 300.0
INTERESTING = (0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 65, 127, 128, 255, 256, 1023, 1024, 1025, 4095,
               4096, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x10001, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)  # fmt: skip


# ----------------------------------------------------------------------------------------------- targets
@dataclass(frozen=True, eq=False)
class Seed:
    """A valid file and what it decodes to."""

    data: bytes
    expected: np.ndarray


@dataclass(eq=False)
class Target:
    """A public decode function (``bytes -> array``), valid files for it, and a check of accepted outputs."""

    name: str
    kind: int
    decode: Callable[[bytes], np.ndarray]
    seeds: list[Seed]
    check: Callable[[bytes, np.ndarray], str | None] = field(default=lambda data, out: None)
    model_id: str = ""  # hex id of the model the target decodes with (recorded in the results)


def lossy_target(name: str, codec, images: list[tuple[np.ndarray, float]]) -> Target:
    """Kind 1 through :func:`~varinf.compression.decompress_image` with ``codec``; seeds from ``images``."""
    from varinf.compression import compress_image, decompress_image

    def decode(data: bytes) -> np.ndarray:
        return decompress_image(data, codec)

    def check(data: bytes, out: np.ndarray) -> str | None:
        h, w, _, channels = struct.unpack_from("<IIHB", data, HEAD)  # the lossy meta this file declares
        shape = (h, w) if channels == 1 else (h, w, 3)
        if out.dtype != np.uint8 or out.shape != shape:
            return f"decoded {out.dtype} {out.shape}, the header declares uint8 {shape}"
        return None

    seeds = []
    for image, quality in images:
        data = compress_image(image, codec, quality).data
        seeds.append(Seed(data, decode(data)))
    return Target(name, 1, decode, seeds, check, codec.model_id().hex())


def lossless_target(name: str, codec, arrays: list[np.ndarray]) -> Target:
    """Kind 2 through :func:`~varinf.compression.lossless.lossless_file.decompress_lossless` with ``codec``."""
    from varinf.compression.lossless.lossless_file import compress_lossless, decompress_lossless

    def decode(data: bytes) -> np.ndarray:
        return decompress_lossless(data, codec)

    def check(data: bytes, out: np.ndarray) -> str | None:  # the decoder checks the data's CRC32 itself
        return None if isinstance(out, np.ndarray) and out.size else f"decoded {type(out).__name__}"

    seeds = [Seed(d, decode(d)) for d in (compress_lossless(a, codec).data for a in arrays)]
    return Target(name, 2, decode, seeds, check, codec.model_id().hex())


def tiny_lossy_codec(prior: str, seed: int = 0):
    """A small untrained codec (weights fixed by ``seed``; latents spread over several integers)."""
    import torch

    from varinf.compression import CodecConfig, ImageCodec

    torch.manual_seed(seed)
    config = CodecConfig(prior=prior, channels=8, latent_channels=8, hyper_channels=8, lambdas=(0.005, 0.02, 0.08))
    codec = ImageCodec(config)
    with torch.no_grad():
        codec.g_a[-1].weight.mul_(20.0)
    return codec.eval()


def tiny_lossless_codec(seed: int = 0):
    """A bits-back codec on a tiny binary VAE (4x4 images), weights fixed by ``seed``; 4 seed words and 8-bit
    latent bins keep its files (and so the image counts a crafted header may declare) small."""
    import torch

    from varinf.compression.lossless.bitsback import BitsBackCodec
    from varinf.vae import VAE, VAEConfig

    torch.manual_seed(seed)
    vae = VAE.from_config(VAEConfig(data_shape=(1, 4, 4), latents=(3,), hidden=((8,),)))
    return BitsBackCodec(vae, latent_bits=8, initial_words=4)


def test_images(rng: np.random.Generator) -> list[tuple[np.ndarray, float]]:
    """Small seed images: grey and colour, flat, noise, gradient; sizes around the 64-pixel padding multiple."""
    yy, xx = np.mgrid[0:70, 0:30]
    return [
        (rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), 1.0),
        (np.full((1, 1), 200, np.uint8), 0.0),
        (((xx * 8 + yy * 3) % 256).astype(np.uint8), 2.0),
        (np.full((37, 100, 3), 90, np.uint8), 0.5),
    ]


# ----------------------------------------------------------------------------------------------- mutations
def _crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def _layout(data: bytes) -> tuple[int, int, int]:
    """(meta length, payload offset, payload bytes) of a valid file."""
    meta = struct.unpack_from("<H", data, 6)[0]
    payload = struct.unpack_from("<I", data, HEAD + meta)[0]
    return meta, HEAD + meta + 4, payload


def _with_payload(data: bytes, payload: bytes) -> bytes:
    meta = _layout(data)[0]
    return _crc(data[: HEAD + meta] + struct.pack("<I", len(payload)) + payload)


def _field_value(rng: random.Random, old: int, width: int) -> int:
    top = (1 << (8 * width)) - 1
    pick = rng.randrange(5)
    if pick == 0:
        value = rng.choice(INTERESTING)
    elif pick == 1:
        value = old + rng.choice((-2, -1, 1, 2, 4, 16))
    elif pick == 2:
        value = old * rng.choice((2, 3, 16, 256)) + rng.randrange(2)
    elif pick == 3:
        value = old >> rng.randrange(1, 8)
    else:
        value = rng.getrandbits(8 * width)
    return value & top


def _set_field(blob: bytearray, rng: random.Random, end: int) -> None:
    width = rng.choice((1, 2, 4))
    pos = rng.randrange(4, max(5, end - width + 1))
    if pos + width > len(blob):
        return
    old = int.from_bytes(blob[pos : pos + width], "little")
    blob[pos : pos + width] = _field_value(rng, old, width).to_bytes(width, "little")


def _op_flip(data, rng, seeds, crc):
    blob = bytearray(data[:-4] if crc else data)
    for _ in range(rng.randrange(1, 5 if crc else 9)):
        blob[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
    return _crc(bytes(blob)) if crc else bytes(blob)


def _op_truncate(data, rng, seeds, crc):
    if crc:
        return _crc(data[: rng.randrange(len(data) - 4)])
    return data[: rng.randrange(len(data))]


def _op_bytes(data, rng, seeds, crc):
    blob = bytearray(data[:-4])
    i, n = rng.randrange(len(blob)), rng.randrange(1, 17)
    blob[i : i + n] = rng.randbytes(len(blob[i : i + n]))
    return _crc(bytes(blob)) if crc else bytes(blob) + data[-4:]


def _op_insert_delete(data, rng, seeds, crc):
    body = data[:-4] if crc else data
    i, n = rng.randrange(len(body) + 1), rng.randrange(1, 17)
    if rng.random() < 0.5:
        body = body[:i] + rng.randbytes(n) + body[i:]
    else:
        body = body[:i] + body[i + n :]
    return _crc(body) if crc else body


def _op_append(data, rng, seeds, crc):
    extra = rng.randbytes(rng.randrange(1, 65))
    return _crc(data[:-4] + extra) if crc else data + extra


def _op_field(data, rng, seeds, crc, times=1):
    start = _layout(data)[1]
    blob = bytearray(data[:-4])
    for _ in range(times):
        _set_field(blob, rng, start)
    return _crc(bytes(blob)) if crc else bytes(blob) + data[-4:]


def _op_fields2(data, rng, seeds, crc):
    return _op_field(data, rng, seeds, crc, times=2)


def _op_size(data, rng, seeds, crc):
    """The first two u32 of the meta (a lossy file's height and width) drawn log-uniformly in [1, 2**18]."""
    blob = bytearray(data[:-4])
    for pos in (HEAD, HEAD + 4):
        if rng.random() < 0.8 and pos + 4 <= len(blob):
            blob[pos : pos + 4] = struct.pack("<I", int(2 ** rng.uniform(0, 18)))
    return _crc(bytes(blob))


def _op_payload(data, rng, seeds, crc):
    _, start, size = _layout(data)
    words = bytearray(data[start : start + size])
    pick = rng.randrange(6)
    n = len(words) // 4
    if pick == 0 and n:  # change 1-3 words
        for _ in range(rng.randrange(1, 4)):
            i = 4 * rng.randrange(n)
            words[i : i + 4] = rng.randbytes(4)
    elif pick == 1 and n > 1:  # swap two words
        i, j = (4 * v for v in rng.sample(range(n), 2))
        words[i : i + 4], words[j : j + 4] = words[j : j + 4], words[i : i + 4]
    elif pick == 2 and n:  # the last word (the coder's head) small or zero
        words[-4:] = struct.pack("<I", rng.choice((0, 1, 2, 0xFFFFFFFF)))
    elif pick == 3:  # drop words at either end
        k = 4 * rng.randrange(1, max(2, n))
        words = words[k:] if rng.random() < 0.5 else words[:-k]
    elif pick == 4:  # add random words at either end
        extra = rng.randbytes(4 * rng.randrange(1, 64))
        words = extra + words if rng.random() < 0.5 else words + extra
    else:  # random words of random length (possibly none)
        words = rng.randbytes(4 * rng.randrange(2 * n + 2))
    return _with_payload(data, bytes(words))


def _op_splice(data, rng, seeds, crc):
    other = rng.choice(seeds).data
    _, start, size = _layout(other)
    return _with_payload(data, other[start : start + size])


def _op_random(data, rng, seeds, crc):
    body = rng.randbytes(rng.randrange(200))
    if rng.random() < 0.5:
        body = data[:6] + body
    return _crc(body) if crc else body


# (name, weight, function, probability of recomputing the CRC)
OPS = (
    ("flip", 14, _op_flip, 0.3),
    ("truncate", 8, _op_truncate, 0.3),
    ("bytes", 8, _op_bytes, 0.5),
    ("insert_delete", 6, _op_insert_delete, 0.5),
    ("append", 4, _op_append, 0.3),
    ("field", 20, _op_field, 0.9),
    ("fields2", 8, _op_fields2, 0.9),
    ("size", 8, _op_size, 1.0),
    ("payload", 10, _op_payload, 1.0),
    ("splice", 4, _op_splice, 1.0),
    ("random", 4, _op_random, 0.5),
)
_WEIGHTS = [w for _, w, _, _ in OPS]


@dataclass(frozen=True)
class Mutant:
    """A fuzzed input: its bytes, the operation that made it, the seed it came from and whether it is a crafted
    header (valid CRC, header different from the seed's)."""

    data: bytes
    op: str
    seed: Seed
    crafted: bool


def mutant(target: Target, index: int, master: int = 0) -> Mutant:
    """Input ``index`` of ``target`` (deterministic in ``master``, the target's name and ``index``)."""
    rng = random.Random(f"{master}/{target.name}/{index}")
    if index < SYSTEMATIC:  # every value of every magic, version and kind byte, with and without the CRC fixed
        seed = target.seeds[0]
        pos, value, crc = index // 512, (index // 2) % 256, index % 2
        blob = bytearray(seed.data)
        blob[pos] = value
        data, op = (_crc(bytes(blob[:-4])) if crc else bytes(blob)), f"byte{pos}"
    else:
        seed = rng.choice(target.seeds)
        op, _, fn, p_crc = rng.choices(OPS, weights=_WEIGHTS)[0]
        data = fn(seed.data, rng, target.seeds, rng.random() < p_crc)
    start = _layout(seed.data)[1]
    crc_ok = len(data) >= 8 and zlib.crc32(data[:-4]) == struct.unpack_from("<I", data, len(data) - 4)[0]
    return Mutant(data, op, seed, crc_ok and data[:start] != seed.data[:start])


@dataclass(frozen=True)
class Outcome:
    """``status``: ``refused`` (FormatError), ``decoded`` (accepted and checked) or ``failure``; ``detail``: the
    error message or what was wrong; ``seconds`` / ``cpu_seconds``: wall-clock and CPU time of the decode call
    (CPU time does not grow when other processes share the core)."""

    status: str
    detail: str
    seconds: float
    cpu_seconds: float = 0.0


def run_input(target: Target, m: Mutant) -> Outcome:
    """Decode one input and classify the result (never raises, except KeyboardInterrupt/SystemExit)."""
    from varinf.compression import FormatError

    start, cpu = time.perf_counter(), time.process_time()
    elapsed = lambda: (time.perf_counter() - start, time.process_time() - cpu)
    try:
        out = target.decode(m.data)
    except FormatError as e:
        return Outcome("refused", str(e), *elapsed())
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # constriction's panics are BaseExceptions
        return Outcome("failure", f"{type(e).__name__}: {e}", *elapsed())
    times = elapsed()
    problem = target.check(m.data, out)
    if problem is None and m.data == m.seed.data and not np.array_equal(out, m.seed.expected):
        problem = "the unmodified file decoded differently"
    return Outcome("failure", problem, *times) if problem else Outcome("decoded", "", *times)


def message_class(text: str) -> str:
    """A refusal message with numbers and hex digests blanked (to count kinds of refusal)."""
    text = re.sub(r"[0-9a-f]{16}", "<id>", text)
    return re.sub(r"\d+(\.\d+)?", "#", text)[:110]


# ----------------------------------------------------------------------------------------------- tallies
_BINS = np.concatenate([[0.0], 10.0 ** np.arange(-6, 2.01, 0.25), [np.inf]])  # seconds, log-spaced


@dataclass
class Tally:
    """Counts and extremes for one target (all inputs, and crafted headers alone)."""

    inputs: int = 0
    refused: int = 0
    decoded: int = 0
    failures: int = 0
    hangs: int = 0
    crafted: int = 0
    over_goal_time: int = 0
    over_goal_memory: int = 0
    max_seconds: float = 0.0
    max_seconds_crafted: float = 0.0
    max_cpu_seconds: float = 0.0
    max_cpu_seconds_crafted: float = 0.0
    max_mb: float = 0.0
    max_mb_crafted: float = 0.0
    seconds: float = 0.0
    ops: Counter = field(default_factory=Counter)
    messages: Counter = field(default_factory=Counter)
    histogram: list = field(default_factory=lambda: [0] * (len(_BINS) - 1))
    examples: list = field(default_factory=list)

    def add(self, m: Mutant, out: Outcome, mb: float = 0.0, index: int = -1) -> None:
        self.inputs += 1
        self.ops[m.op] += 1
        self.crafted += m.crafted
        self.seconds += out.seconds
        self.max_seconds = max(self.max_seconds, out.seconds)
        self.max_cpu_seconds = max(self.max_cpu_seconds, out.cpu_seconds)
        self.max_mb = max(self.max_mb, mb)
        if m.crafted:
            self.max_seconds_crafted = max(self.max_seconds_crafted, out.seconds)
            self.max_cpu_seconds_crafted = max(self.max_cpu_seconds_crafted, out.cpu_seconds)
            self.max_mb_crafted = max(self.max_mb_crafted, mb)
        self.over_goal_time += out.seconds > GOAL_SECONDS
        self.over_goal_memory += mb > GOAL_MB
        self.histogram[int(np.searchsorted(_BINS, out.seconds, side="right")) - 1] += 1
        if out.status == "refused":
            self.refused += 1
            self.messages[message_class(out.detail)] += 1
        elif out.status == "decoded":
            self.decoded += 1
        else:
            self.failures += 1
            if len(self.examples) < 20:
                self.examples.append({"index": index, "op": m.op, "detail": out.detail[:300], "hex": m.data.hex()})

    def merge(self, other: dict) -> None:
        for key in ("inputs", "refused", "decoded", "failures", "hangs", "crafted", "over_goal_time",
                    "over_goal_memory", "seconds"):  # fmt: skip
            setattr(self, key, getattr(self, key) + other[key])
        for key in ("max_seconds", "max_seconds_crafted", "max_cpu_seconds", "max_cpu_seconds_crafted", "max_mb",
                    "max_mb_crafted"):  # fmt: skip
            setattr(self, key, max(getattr(self, key), other.get(key, 0.0)))
        self.ops.update(other["ops"])
        self.messages.update(other["messages"])
        self.histogram = [a + b for a, b in zip(self.histogram, other["histogram"])]
        self.examples = (self.examples + other["examples"])[:20]

    def to_dict(self) -> dict:
        return {k: (dict(v) if isinstance(v, Counter) else v) for k, v in self.__dict__.items()}

    def quantile(self, q: float) -> float:
        """Upper edge of the histogram bin holding the ``q`` quantile of the time per input (seconds)."""
        c = np.cumsum(self.histogram)
        return float(_BINS[min(int(np.searchsorted(c, q * c[-1])) + 1, len(_BINS) - 1)]) if c[-1] else 0.0


# ----------------------------------------------------------------------------------------------- full run
TARGETS = ("lossy/shipped", "lossy/tiny-factorized", "lossless/shipped", "lossless/tiny")


def full_targets(names: tuple[str, ...] = TARGETS) -> list[Target]:
    """The shipped models (what users decode with) and two tiny untrained ones (factorized prior, a 4x4 VAE);
    ``names`` picks some of them (inputs then go round those only)."""
    from varinf.compression import load_codec
    from varinf.compression.lossless.bitsback_model import load_bitsback

    unknown = set(names) - set(TARGETS)
    if unknown or not names:
        raise SystemExit(f"unknown fuzz targets {sorted(unknown)} (known: {', '.join(TARGETS)})")
    rng = np.random.default_rng(0)  # every seed input is drawn whichever targets are built: the same seeds
    digits = _digits(rng)
    shipped_images, tiny_images = test_images(rng), test_images(rng)
    binaries = [_binary(rng, (1, 4, 4)), _binary(rng, (5, 4, 4))]
    makers = {
        "lossy/shipped": lambda: lossy_target("lossy/shipped", load_codec(), shipped_images),
        "lossy/tiny-factorized": lambda: lossy_target(
            "lossy/tiny-factorized", tiny_lossy_codec("factorized"), tiny_images
        ),
        "lossless/shipped": lambda: lossless_target(
            "lossless/shipped", load_bitsback(), [digits[:1, 0], digits[:3, 0], digits[:2] * 255]
        ),
        "lossless/tiny": lambda: lossless_target("lossless/tiny", tiny_lossless_codec(), binaries),
    }
    return [makers[name]() for name in TARGETS if name in names]


def _binary(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.random(shape) < 0.4).astype(np.uint8) * 255


def _digits(rng: np.random.Generator) -> np.ndarray:
    """Three binarized MNIST test digits ``(3, 1, 28, 28)`` (random strokes if the data is absent)."""
    root = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
    try:
        from varinf.data import load_mnist

        return (load_mnist(root).test.images[:3].numpy() > 127).astype(np.uint8)
    except (OSError, ValueError):
        return (rng.random((3, 1, 28, 28)) < 0.15).astype(np.uint8)


class _Heartbeat:
    """A shared page: the worker writes (chunk, index, wall and CPU time at the start) before every input and
    clears the start time after it; the parent reads it."""

    FORMAT = struct.Struct("<qqdd")

    def __init__(self, path: Path, create: bool):
        if create:
            path.write_bytes(bytes(mmap.PAGESIZE))
        self._file = open(path, "r+b")  # kept open for the mmap
        self.map = mmap.mmap(self._file.fileno(), mmap.PAGESIZE)

    def write(self, chunk: int, index: int, busy: bool = True) -> None:
        """Input ``index`` starts now (``busy``) or has finished (start time 0: nothing to watch)."""
        start = (time.time(), time.process_time()) if busy else (0.0, 0.0)
        self.map[: self.FORMAT.size] = self.FORMAT.pack(chunk, index, *start)

    def read(self) -> tuple[int, int, float, float]:
        return self.FORMAT.unpack(self.map[: self.FORMAT.size])


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _PeakMemory:
    """Peak resident memory of this process during one call (Linux: reset VmHWM, then read it), in MB."""

    def __init__(self):
        self.ok = os.path.exists("/proc/self/clear_refs")
        if self.ok:
            self._clear = os.open("/proc/self/clear_refs", os.O_WRONLY)
            self._status = os.open("/proc/self/status", os.O_RDONLY)

    def _read(self, key: bytes) -> float:
        text = os.pread(self._status, 8192, 0)
        i = text.index(key)
        return int(text[i + len(key) : text.index(b"kB", i)]) / 1024.0

    def reset(self) -> float:
        """Reset the high-water mark; return the current resident memory (MB)."""
        if not self.ok:
            return 0.0
        os.write(self._clear, b"5")
        return self._read(b"VmRSS:")

    def peak(self) -> float:
        return self._read(b"VmHWM:") if self.ok else 0.0


def worker(args: argparse.Namespace) -> None:
    """Run the pending chunks in order, writing one JSON file per finished chunk."""
    import resource

    # an input that allocates past this fails with MemoryError (a recorded failure), sparing the shared machine
    limit = int(args.memory_limit * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    commit = _commit()
    targets = full_targets(args.targets)
    beat = _Heartbeat(args.state / "heartbeat", create=False)
    memory = _PeakMemory()
    skips = _events(args.state)
    for chunk in _pending(args):
        tallies = {t.name: Tally() for t in targets}
        rss, peak_rss = float("inf"), 0.0  # resident MB before an input (least), and at any input's peak
        for g in range(chunk * args.chunk, min((chunk + 1) * args.chunk, args.inputs)):
            target, index = targets[g % len(targets)], g // len(targets)
            m = mutant(target, index, args.seed)
            if g in skips:  # hung or killed the process earlier: counted, not rerun
                tally = tallies[target.name]
                event = skips[g]
                tally.add(
                    m, Outcome("failure", event["detail"], event["seconds"], event.get("cpu_seconds", 0.0)), index=g
                )
                tally.hangs += skips[g]["event"] == "hang"
                tally.failures -= skips[g]["event"] == "hang"
                continue
            beat.write(chunk, g)
            before = memory.reset()
            out = run_input(target, m)
            peak = memory.peak()
            beat.write(chunk, g, busy=False)
            rss, peak_rss = min(rss, before), max(peak_rss, peak)
            tallies[target.name].add(m, out, max(0.0, peak - before), index=g)
        result = {
            "chunk": chunk,
            "commit": commit,
            "rss_mb": rss if peak_rss else 0.0,
            "peak_rss_mb": peak_rss,
            "model_ids": {t.name: t.model_id for t in targets},
            "tallies": {k: t.to_dict() for k, t in tallies.items()},
        }
        tmp = args.state / f"chunk_{chunk:06d}.json.tmp"
        tmp.write_text(json.dumps(result))
        os.replace(tmp, args.state / f"chunk_{chunk:06d}.json")
        print(f"chunk {chunk} done", flush=True)


def _commit() -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from provenance import git_commit

    return git_commit()


def _events(state: Path) -> dict[int, dict]:
    path = state / "events.jsonl"
    if not path.exists():
        return {}
    return {e["index"]: e for e in map(json.loads, path.read_text().splitlines()) if e}


def _pending(args: argparse.Namespace) -> list[int]:
    total = -(-args.inputs // args.chunk)
    first, last = args.chunks if args.chunks else (0, total)
    return [c for c in range(first, min(last, total)) if not (args.state / f"chunk_{c:06d}.json").exists()]


def supervise(args: argparse.Namespace) -> None:
    """Start a worker on the pending chunks; restart it after a hang or a death, recording the input."""
    args.state.mkdir(parents=True, exist_ok=True)
    config = {"inputs": args.inputs, "chunk": args.chunk, "seed": args.seed, "targets": list(args.targets)}
    saved = args.state / "config.json"
    if saved.is_file() and any(json.loads(saved.read_text()).get(k, v) != v for k, v in config.items() if k != "inputs"):
        sys.exit(f"{args.state} holds chunks of another fuzz configuration ({saved.read_text().strip()})")
    saved.write_text(json.dumps(config))
    while _pending(args):
        beat = _Heartbeat(args.state / "heartbeat", create=True)
        cmd = [sys.executable, __file__, "--worker", "--inputs", str(args.inputs), "--chunk", str(args.chunk),
               "--seed", str(args.seed), "--state", str(args.state), "--memory-limit", str(args.memory_limit),
               "--targets", *args.targets]  # fmt: skip
        if args.chunks:
            cmd += ["--chunks", f"{args.chunks[0]}:{args.chunks[1]}"]
        proc = subprocess.Popen(cmd, start_new_session=True)
        event = None
        while proc.poll() is None:
            time.sleep(0.5)
            _, index, wall, cpu = beat.read()
            if not wall:
                continue
            try:  # a hang: --hang seconds of CPU on one input (other jobs on the core do not count), or 20x that wall
                used = _cpu_seconds(proc.pid) - cpu
            except (OSError, IndexError, ValueError):
                continue
            if used > args.hang or time.time() - wall > 20 * args.hang:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                event = {"event": "hang", "index": index, "seconds": time.time() - wall, "cpu_seconds": used}
        if event is None and proc.returncode != 0:
            _, index, wall, cpu = beat.read()
            if not wall:
                sys.exit(f"the worker failed outside an input (exit {proc.returncode}); see its output above")
            event = {"event": "death", "index": index, "seconds": time.time() - wall}
        if event is not None:
            event["detail"] = f"{event['event']} (exit {proc.returncode})"
            with open(args.state / "events.jsonl", "a") as f:
                f.write(json.dumps(event) + "\n")
            print(f"recorded {event}", flush=True)


# ----------------------------------------------------------------------------------------------- report
def report(args: argparse.Namespace) -> dict:
    config = json.loads((args.state / "config.json").read_text())
    files = sorted(args.state.glob("chunk_*.json"))
    tallies: dict[str, Tally] = {}
    rss, peak_rss, commits, model_ids = float("inf"), 0.0, Counter(), {}
    for f in files:
        chunk = json.loads(f.read_text())
        for name, key in chunk.get("model_ids", {}).items():
            model_ids.setdefault(name, set()).add(key)
        if chunk.get("peak_rss_mb"):
            rss, peak_rss = min(rss, chunk["rss_mb"]), max(peak_rss, chunk["peak_rss_mb"])
        commits[chunk.get("commit", "unknown")] += 1
        for name, t in chunk["tallies"].items():
            tallies.setdefault(name, Tally()).merge(t)
    total = Tally()
    for t in tallies.values():
        total.merge(t.to_dict())
    import torch

    result = {
        "benchmark": "fuzz_vif",
        "inputs": total.inputs,
        "planned_inputs": config["inputs"],
        "chunks": len(files),
        "seed": config["seed"],
        "failures": total.failures,
        "hangs": total.hangs,
        "crafted_headers": total.crafted,
        "crafted_max_seconds": total.max_seconds_crafted,
        "crafted_max_cpu_seconds": total.max_cpu_seconds_crafted,
        "crafted_max_mb": total.max_mb_crafted,
        "max_seconds": total.max_seconds,
        "max_cpu_seconds": total.max_cpu_seconds,
        "max_mb": total.max_mb,
        "worker_rss_mb": rss if peak_rss else 0.0,
        "worker_peak_rss_mb": peak_rss,
        "goals": {"seconds": GOAL_SECONDS, "mb": GOAL_MB},
        "targets_fuzzed": config.get("targets", list(TARGETS)),
        "model_ids": {k: sorted(v) for k, v in model_ids.items()},
        "targets": {k: v.to_dict() for k, v in tallies.items()},
        "environment": {
            "commit": ", ".join(f"{c} ({n} chunks)" if len(commits) > 1 else c for c, n in commits.items()),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "machine": platform.machine(),
            "processor": platform.processor(),
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fuzz_vif.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "fuzz_vif.md").write_text(markdown(result, tallies))
    return result


def markdown(result: dict, tallies: dict[str, Tally]) -> str:
    ok = lambda good: "met" if good else "**missed**"
    crafted_ok = result["crafted_max_seconds"] <= GOAL_SECONDS and result["crafted_max_mb"] <= GOAL_MB
    crafted_cpu_ok = result["crafted_max_cpu_seconds"] <= GOAL_SECONDS and result["crafted_max_mb"] <= GOAL_MB
    lines = [
        "# Fuzzing the .vif decoders",
        "",
        f"`python benchmarks/fuzz_vif.py --inputs {result['planned_inputs']} --targets "
        f"{' '.join(result.get('targets_fuzzed', TARGETS))}` (one core, `taskset -c 0`, "
        f"`OMP_NUM_THREADS=1`), commit {result['environment']['commit']}, seed {result['seed']}. Every input must be "
        "refused with `FormatError` or decode to the declared shape (seed files: to their exact output); time and "
        "peak resident memory (VmHWM, reset per input; increase over the resident memory before the input) per "
        f"input. The worker process holds at least {result['worker_rss_mb']:.0f} MB before an input (models, torch) "
        f"and at most {result['worker_peak_rss_mb']:.0f} MB at any input's peak: no input needed more than "
        f"{result['worker_peak_rss_mb'] - result['worker_rss_mb']:.0f} MB beyond that (the per-input increase below "
        "counts only memory not already held from earlier inputs).",
        "",
        f"* inputs: **{result['inputs']:,}**; failures (crashes, wrong decodes): **{result['failures']}**; "
        f"hangs: **{result['hangs']}** — goal 1,000,000 / 0 / 0: {ok(result['inputs'] >= 1_000_000 and not result['failures'] and not result['hangs'])}",
        f"* crafted headers (valid CRC, header changed): {result['crafted_headers']:,}; slowest "
        f"{result['crafted_max_seconds']:.3f} s wall-clock ({ok(crafted_ok)}), {result['crafted_max_cpu_seconds']:.3f} s "
        f"CPU ({ok(crafted_cpu_ok)}); most memory {result['crafted_max_mb']:.0f} MB — goal {GOAL_SECONDS:g} s and "
        f"{GOAL_MB:g} MB (the core is shared with other work: wall-clock times include waiting for it)",
        f"* any input: slowest {result['max_seconds']:.3f} s (CPU {result['max_cpu_seconds']:.3f} s), most memory "
        f"{result['max_mb']:.0f} MB",
        "* models (id): " + (", ".join(f"{k} {'/'.join(v)}" for k, v in result.get("model_ids", {}).items())
                             or "not recorded by this run"),
        "",
        "| target | inputs | refused | decoded | failures | hangs | crafted | median s | p99.9 s | max s | max CPU s "
        "| max MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t in tallies.items():
        lines.append(
            f"| {name} | {t.inputs:,} | {t.refused:,} | {t.decoded:,} | {t.failures} | {t.hangs} | {t.crafted:,} "
            f"| {t.quantile(0.5):.0e} | {t.quantile(0.999):.0e} | {t.max_seconds:.3f} | {t.max_cpu_seconds:.3f} "
            f"| {t.max_mb:.0f} |"
        )
    lines += ["", "Inputs per mutation:", ""]
    ops = Counter()
    for t in tallies.values():
        ops.update(t.ops)
    lines.append(", ".join(f"{k} {v:,}" for k, v in sorted(ops.items())))
    lines += ["", "Most frequent refusals (numbers blanked):", ""]
    messages = Counter()
    for t in tallies.values():
        messages.update(t.messages)
    lines += [f"* {n:,} × {msg}" for msg, n in messages.most_common(15)]
    failures = [e for t in tallies.values() for e in t.examples]
    if failures:
        lines += ["", "Failures (first 20):", ""] + [
            f"* input {e['index']} ({e['op']}): {e['detail']}" for e in failures
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=5000, help="inputs per chunk (one result file each)")
    parser.add_argument("--chunks", type=lambda s: tuple(int(v) for v in s.split(":")), help="A:B, a piece")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang", type=float, default=10.0, help="CPU seconds on one input that count as a hang")
    parser.add_argument("--memory-limit", type=float, default=3.0, help="address-space limit of the worker, GiB")
    parser.add_argument("--state", type=Path, default=STATE, help="folder of finished chunks (resumable)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where --report writes fuzz_vif.{json,md}")
    parser.add_argument("--report", action="store_true", help="aggregate finished chunks into benchmarks/results")
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), help=f"targets to fuzz (default: {TARGETS})")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.targets = tuple(args.targets)
    if args.worker:
        worker(args)
    elif args.report:
        r = report(args)
        print(f"{r['inputs']:,} inputs, {r['failures']} failures, {r['hangs']} hangs; crafted headers: max "
              f"{r['crafted_max_seconds']:.3f} s, {r['crafted_max_mb']:.0f} MB")  # fmt: skip
    else:
        supervise(args)
        report(args)


if __name__ == "__main__":
    main()
