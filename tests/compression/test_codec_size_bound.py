"""Bounded decoding: every pushed symbol grows the stack by at least its growth floor, so a payload bounds the
size a file may declare; size bombs and free-symbol payloads are refused before any allocation or synthesis."""

from __future__ import annotations

import struct
import time
import zlib

import numpy as np
import pytest

from varinf.compression import FormatError, compress_image, decompress_image
from varinf.compression.coding.ans import FLOOR_SCALE, AnsStack, CodingError, growth_floor
from varinf.compression.coding.tables import DiscreteTable
from varinf.compression.lossy.latents import FactorizedLatent
from varinf.compression.lossy.size_bound import (
    SLACK_BITS,
    check_encoded,
    decoding_budget,
    latent_floor,
    max_pixels,
)

from .conftest import make_tiny_codec


def _simulated_push(row: np.ndarray, values: np.ndarray) -> tuple[list[int], int]:
    """constriction's stack encoder in Python integers: (words, index of the first symbol pushed once the state
    had reached 2**32, in push order)."""
    cum = np.concatenate([[0], np.cumsum(row)[:-1]])
    x, bulk, steady_from = 0, [], None
    for i, v in enumerate(values[::-1].tolist()):  # AnsStack pushes in reverse so that pops come in order
        if steady_from is None and x >= 1 << 32:
            steady_from = i
        w, c = int(row[v]), int(cum[v])
        if x >> 40 >= w:
            bulk.append(x & 0xFFFFFFFF)
            x >>= 32
        x = ((x // w) << 24) | (x % w + c)
    state = [x & 0xFFFFFFFF, x >> 32] if x >> 32 else [x] if x else []
    return bulk + state, len(values) if steady_from is None else steady_from


@pytest.mark.parametrize("seed", range(6))
def test_every_symbol_pushed_on_a_full_stack_grows_it_by_at_least_its_floor(seed):
    """file bits > 32 + sum of the floors of the symbols pushed after the state reached 2**32 (ans.py docstring),
    on tables from near-deterministic to near-uniform, including runs of the rarest and the commonest values."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 40))
    p = rng.dirichlet(np.full(k, [0.02, 0.3, 5.0][seed % 3]))
    table = DiscreteTable.from_float([np.append(p, 1e-9)], np.array([0]))
    row = table.pmfs[0]
    coded = row[:-1]  # values in range (the last entry is the escape)
    for trial in range(20):
        n = int(rng.integers(1, 3000))
        if trial % 4 == 0:
            values = np.full(n, int(np.argmin(coded)))  # the rarest value
        elif trial % 4 == 1:
            values = np.full(n, int(np.argmax(coded)))  # the commonest value (cheapest symbol)
        else:
            values = rng.choice(k, n, p=coded / coded.sum())
        stack = AnsStack()
        stack.push(values, np.zeros(n, dtype=np.int64), table)
        words, steady_from = _simulated_push(row, values)
        assert np.array_equal(stack.words(), np.array(words, dtype=np.uint32))  # the model of the coder is exact
        steady = int(growth_floor(row[values[::-1][steady_from:]]).sum())
        assert steady < (stack.num_bits() - 32) * FLOOR_SCALE or stack.num_bits() <= 32
        assert stack.pushed_floor == int(growth_floor(row[values]).sum())


def test_growth_floor_is_positive_and_close_to_the_information_content():
    w = np.array([1, 2, 3, 1000, 2**23, 2**24 - 2, 2**24 - 1])
    floor_bits = growth_floor(w) / FLOOR_SCALE
    info = 24 - np.log2(w)
    assert np.all(growth_floor(w[:-1]) > 0) and growth_floor(w[-1:])[0] >= 0  # 2**24 - 1: 1.4 units, minus one
    assert np.all(floor_bits <= info) and np.all(floor_bits >= info * (1 - 2**-7) - 2e-7)


@pytest.mark.parametrize("prior", ["hyperprior", "factorized"])
def test_size_bomb_is_refused_before_decoding(prior, picture):
    """A small file whose header declares a huge image (CRC recomputed) fails at once with a one-line error."""
    codec = make_tiny_codec(prior)
    data = compress_image(picture[:64, :64], codec, quality=1.0).data
    for h, w in [(4096, 4096), (2048, 2048), (1 << 16, 256)]:
        bomb = bytearray(data[:-4])
        struct.pack_into("<II", bomb, 20, h, w)
        bomb += struct.pack("<I", zlib.crc32(bytes(bomb)))
        start = time.perf_counter()
        with pytest.raises(FormatError, match="too few for the declared image size"):
            decompress_image(bytes(bomb), codec)
        assert time.perf_counter() - start < 0.5


def test_the_bound_scales_with_the_payload(tiny_codec):
    """max_pixels grows linearly with the payload, and every real file lies within its own bound."""
    small, large = max_pixels(tiny_codec, 1000), max_pixels(tiny_codec, 16000)
    assert 0 < small < large and large / small == pytest.approx(16, rel=0.3)
    rng = np.random.default_rng(0)
    for shape in [(64, 64, 3), (200, 130, 3), (1, 1), (300, 300)]:
        img = np.full(shape, 128, np.uint8) if len(shape) == 2 else rng.integers(0, 256, shape, dtype=np.uint8)
        result = compress_image(img, tiny_codec, 0.0)
        h, w = (-(-s // 64) * 64 for s in shape[:2])
        need = latent_floor(tiny_codec.tables(), (1, 8, h // 16, w // 16))
        assert need <= (result.payload_bits + SLACK_BITS) * FLOOR_SCALE


def test_a_stream_of_free_bottom_symbols_is_refused_by_encoder_and_decoder(tiny_codec):
    """On an empty stack the value with cumulative 0 costs nothing: crafted payloads of such symbols (or ones
    that run dry and then decode them) would declare any size for free. Both sides refuse them."""
    tables = tiny_codec.tables()
    y_shape = (1, 8, 8, 8)
    z_rows = np.broadcast_to(np.arange(8)[None, :, None, None], (1, 8, 2, 2))
    stack = AnsStack()
    # y: the lowest value of row 0 (a rare tail value) everywhere, pushed first; then z at every row's offset
    stack.push(np.full(y_shape, tables.y_table.offsets[0]), np.zeros(y_shape, dtype=np.int64), tables.y_table)
    stack.push(tables.z_table.offsets[z_rows], z_rows, tables.z_table)
    assert stack.num_bits() <= 32  # every symbol was free
    with pytest.raises(ValueError, match="decoder's size check would refuse"):
        check_encoded(stack)
    words = stack.words()
    decoder = AnsStack(words)
    decoder.pop(z_rows, tables.z_table)
    decoder.pop(np.zeros(y_shape, dtype=np.int64), tables.y_table)
    assert decoder.is_empty()  # the stream "decodes exactly", yet it is not a stream this codec writes
    assert decoder.popped_floor > decoding_budget(len(words))
    with pytest.raises(CodingError, match="too short for the symbols it decodes to"):
        AnsStack(words, floor_budget=decoding_budget(len(words))).pop(z_rows, tables.z_table)


def test_an_empty_payload_declaring_an_image_is_refused(tiny_codec, picture):
    data = compress_image(picture[:64, :64], tiny_codec, quality=0.0).data
    header = bytearray(data[: 20 + 11]) + struct.pack("<I", 0)
    with pytest.raises(FormatError, match=r"payload \(0 bytes, too few"):
        decompress_image(bytes(header) + struct.pack("<I", zlib.crc32(bytes(header))), tiny_codec)


def _mode(table, rows: np.ndarray) -> np.ndarray:
    """The most probable value of each row in ``rows``."""
    modes = np.array([table.offsets[k] + int(np.argmax(table.pmfs[k][:-1])) for k in range(len(table))])
    return modes[rows]


@pytest.mark.parametrize("prior", ["hyperprior", "factorized"])
def test_the_cheapest_stream_of_a_size_is_accepted(prior):
    """Every latent at its row's most probable value (the smallest file of that size we can build) passes the
    encoder's and the decoder's size checks and decodes."""
    codec = make_tiny_codec(prior)
    tables = codec.tables()
    h, w = 256, 192
    y_shape = (1, 8, h // 16, w // 16)
    stack = AnsStack()
    if prior == "factorized":
        rows = FactorizedLatent._channel_index(y_shape)
        stack.push(_mode(tables.y_table, rows), rows, tables.y_table)
    else:
        z_rows = FactorizedLatent._channel_index((1, 8, h // 64, w // 64))
        z = _mode(tables.z_table, z_rows)
        y_rows = codec.latent._scale_index(z, tables)
        stack.push(_mode(tables.y_table, y_rows), y_rows, tables.y_table)
        stack.push(z, z_rows, tables.z_table)
    check_encoded(stack)
    assert latent_floor(tables, y_shape) <= (stack.num_bits() + SLACK_BITS) * FLOOR_SCALE
    assert codec.decompress(stack.words(), (h, w), 0.0).shape == (1, 3, h, w)
