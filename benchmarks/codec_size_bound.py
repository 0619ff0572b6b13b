"""The lossy codec's size bound, measured: decoding work per payload byte (see varinf/compression/lossy/size_bound.py).

A payload of ``B`` bits may declare an image only if the least floor of any latents of that size fits in
``B + 32`` bits (``latent_floor``; a proven lower bound on the bits any stream of that size occupies). So the pixels
a file may declare grow at most linearly with its payload: ``max_pixels(codec, n)``. Decoding work grows linearly
with the pixels. This script measures both factors for a model: the least floor per 64 x 64 block and the
largest square image a payload may declare, and the CPU time and peak memory of decoding the *cheapest* stream we can
build at a given size (every latent at its row's most probable value), from which the work per payload byte follows.

Run:  taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/codec_size_bound.py          (shipped model)
      python benchmarks/codec_size_bound.py --report                                     (markdown from the JSON)

Writes benchmarks/results/codec_size_bound.{json,md}. Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from provenance import run_environment

RESULTS = Path(__file__).resolve().parent / "results"


def cheapest_words(codec, h: int, w: int) -> np.ndarray:
    """ANS words of the cheapest latents of an ``h x w`` image: every z and y symbol at its row's mode."""
    from varinf.compression.coding.ans import AnsStack
    from varinf.compression.lossy.latents import FactorizedLatent

    tables = codec.tables()
    modes = lambda table: np.array([table.offsets[k] + int(np.argmax(table.pmfs[k][:-1])) for k in range(len(table))])
    z_rows = FactorizedLatent._channel_index((1, len(tables.z_table), h // 64, w // 64))
    z = modes(tables.z_table)[z_rows]
    y_modes = modes(tables.y_table)
    coded = []
    if codec.config.prior == "checkerboard":

        def pick(rows, mean_fp):
            coded.append((y_modes[rows], rows))
            return y_modes[rows]

        codec.latent._passes(z, tables, pick, pick)
    else:
        rows = codec.latent._entropy_parameters(z, tables)[0] if codec.config.prior == "mean-scale" else None
        rows = codec.latent._scale_index(z, tables) if rows is None else rows
        coded.append((y_modes[rows], rows))
    stack = AnsStack()
    for s, rows in coded[::-1]:
        stack.push(s, rows, tables.y_table)
    stack.push(z, z_rows, tables.z_table)
    return stack.words()


def _peak_mb() -> tuple[callable, callable]:
    clear = os.open("/proc/self/clear_refs", os.O_WRONLY)
    status = os.open("/proc/self/status", os.O_RDONLY)

    def read(key: bytes) -> float:
        text = os.pread(status, 8192, 0)
        i = text.index(key)
        return int(text[i + len(key) : text.index(b"kB", i)]) / 1024.0

    def reset() -> float:
        os.write(clear, b"5")
        return read(b"VmRSS:")

    return reset, lambda: read(b"VmHWM:")


def measure(args) -> dict:
    import torch

    from varinf.compression import load_codec
    from varinf.compression.coding.ans import FLOOR_SCALE
    from varinf.compression.lossy.size_bound import latent_floor, max_pixels

    torch.set_num_threads(1)
    codec = load_codec(args.model)
    tables, m = codec.tables(), codec.config.latent_channels
    floor_bits = latent_floor(tables, (1, m, 4, 4)) / FLOOR_SCALE
    rows = []
    reset, peak = _peak_mb()
    for side in args.sides:
        words = cheapest_words(codec, side, side)
        codec.decompress(words, (side, side), codec.default_quality)  # warm-up (tables, caches)
        before = reset()
        t, c = time.perf_counter(), time.process_time()
        codec.decompress(words, (side, side), codec.default_quality)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        mb = peak() - before
        payload = 4 * len(words)
        rows.append({"side": side, "payload_bytes": payload, "pixels_per_byte": side * side / payload,
                     "decode_wall_s": wall, "decode_cpu_s": cpu, "decode_mb": mb,
                     "cpu_us_per_pixel": 1e6 * cpu / side**2, "bytes_per_pixel": 2**20 * mb / side**2})  # fmt: skip
        print(rows[-1], flush=True)
    per_byte_pixels = max_pixels(codec, 1 << 20) / (1 << 20)
    worst = rows[-1]
    return {
        "model_id": codec.model_id().hex(),
        "prior": codec.config.prior,
        "floor_bits_per_64x64_block": floor_bits,
        "floor_bpp": floor_bits / 4096,
        "max_pixels_per_payload_byte": per_byte_pixels,
        "cheapest_streams": rows,
        "bound_cpu_ms_per_payload_byte": per_byte_pixels * worst["cpu_us_per_pixel"] / 1e3,
        "bound_kb_per_payload_byte": per_byte_pixels * worst["bytes_per_pixel"] / 1024,
        "environment": run_environment(1),
    }


def markdown(r: dict) -> str:
    env = r["environment"]
    lines = [
        f"# Size bound of the lossy codec ({r['prior']}, id {r['model_id']})",
        "",
        f"`{env['command']}` at commit {env['commit']}; torch {env['torch']}, 1 thread, load average "
        f"{env['load_average']}.",
        "",
        f"* least floor of any latents: {r['floor_bits_per_64x64_block']:.1f} bits per 64 x 64 block "
        f"({r['floor_bpp']:.4f} bpp), so a payload may declare at most {r['max_pixels_per_payload_byte']:.0f} pixels "
        "per byte (largest square of a 1 MiB payload)",
        f"* decoding work bounded by the file: at most about {r['bound_cpu_ms_per_payload_byte']:.2f} ms of CPU and "
        f"{r['bound_kb_per_payload_byte']:.0f} KB of memory per payload byte (pixels per byte times the cost per "
        "pixel of the largest cheapest stream below)",
        "",
        "| side | cheapest payload bytes | pixels per byte | decode CPU s | decode wall s | peak MB | CPU µs/pixel "
        "| bytes/pixel |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in r["cheapest_streams"]:
        lines.append(
            f"| {row['side']} | {row['payload_bytes']:,} | {row['pixels_per_byte']:.0f} | {row['decode_cpu_s']:.3f} "
            f"| {row['decode_wall_s']:.3f} | {row['decode_mb']:.0f} | {row['cpu_us_per_pixel']:.3f} "
            f"| {row['bytes_per_pixel']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="codec directory (default: shipped)")
    parser.add_argument("--sides", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--name", default="codec_size_bound")
    parser.add_argument("--report", action="store_true", help="markdown again from the JSON only")
    args = parser.parse_args()
    path = RESULTS / f"{args.name}.json"
    result = json.loads(path.read_text()) if args.report else measure(args)
    if not args.report:
        path.write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(result)
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
