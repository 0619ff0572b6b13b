"""Fuzzing in CI: 22,500 mutated .vif files of both kinds through the public decode functions, 2,500 of them against
the shipped lossy model's decoder; every one is refused with FormatError or decodes to the declared shape, within a
time bound per input. The generator is the one of ``benchmarks/fuzz_vif.py`` (which runs 1,000,000 inputs with
per-input memory, see benchmarks/results/fuzz_vif.md), imported directly: this test fails, never skips, when it
cannot be imported. Inputs: every value of the magic, version and kind bytes, bit flips, truncations, length
fields, crafted headers with recomputed CRCs, payload changes, splices."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np

from varinf.compression import load_codec

from .conftest import make_tiny_codec

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
fuzz = importlib.import_module("fuzz_vif")  # an ImportError here fails the test module (no silent skip)

# CPU seconds per input: lossy decoding is bounded by the payload (lossy/size_bound.py), bits-back decoding by the
# image count the payload can hold (lossless_file.MIN_BITS_PER_IMAGE); these small codecs need milliseconds.
SECONDS = 1.0


def test_fuzzed_files_are_refused_cleanly_or_decode_to_the_declared_shape(tiny_codec):
    rng = np.random.default_rng(0)
    digits = (rng.random((4, 4, 4)) < 0.4).astype(np.uint8)
    plan = [  # (target, first input, number of inputs); inputs below fuzz.SYSTEMATIC set bytes 0-5 to every value
        (fuzz.lossy_target("lossy/tiny-hyperprior", tiny_codec, fuzz.test_images(rng)), 0, 7_000),
        (fuzz.lossy_target("lossy/tiny-factorized", make_tiny_codec("factorized"), fuzz.test_images(rng)), 0, 7_000),
        (fuzz.lossless_target("lossless/tiny", fuzz.tiny_lossless_codec(), [digits[:1], digits * 255]), 0, 6_100),
        # the shipped model's decode path (mixed mutations after the systematic header bytes)
        (fuzz.lossy_target("lossy/shipped", load_codec(), fuzz.test_images(rng)), fuzz.SYSTEMATIC, 2_500),
    ]
    total, failures, slow, ops = 0, [], [], set()
    for target, first, count in plan:
        tally = fuzz.Tally()
        for index in range(first, first + count):
            m = fuzz.mutant(target, index)
            out = fuzz.run_input(target, m)
            tally.add(m, out, index=index)
            ops.add(m.op)
            if out.status == "failure":
                failures.append((target.name, index, m.op, out.detail))
            if out.cpu_seconds > SECONDS:  # CPU time: not inflated by other jobs on a shared machine
                slow.append((target.name, index, m.op, round(out.cpu_seconds, 2)))
        total += tally.inputs
        # the mix reaches the decoders: clean refusals of many kinds, crafted headers, accepted files
        assert tally.refused > count // 2 and tally.decoded > 10 and tally.crafted > count // 5, target.name
        assert len(tally.messages) > 10, (target.name, tally.messages.most_common())
    assert not failures, failures[:5]
    assert not slow, slow[:5]
    assert total >= 22_500
    assert ops >= {name for name, *_ in fuzz.OPS} | {f"byte{i}" for i in range(6)}
