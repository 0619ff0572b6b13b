"""Encode/decode time of the learned lossy codec on Kodak, one thread: wall and CPU seconds per image.

Run:  taskset -c 0 python benchmarks/codec_speed.py                  (shipped codec, 24 images, quality 3)
      taskset -c 0 python benchmarks/codec_speed.py --model runs/X --limit 6 --name codec_speed_X

Decoding is timed twice per image: as shipped (fast synthesis: channels-last, fused inverse GDN, sub-pixel
last layer; see varinf.compression.lossy.fast_synthesis) and with the plain training-time synthesis g_s, so the
ratio isolates the synthesis rewrite. CPU seconds (time.process_time) are reported next to wall seconds:
on a shared machine the wall time includes waiting for the core. Medians over images (each the best of
``--repeats``). Writes benchmarks/results/<name>.{json,md}. Kodak is evaluation data only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from functools import partial
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak"


def _timed(fn, repeats: int) -> tuple[float, float]:
    """Best (wall, cpu) seconds of ``repeats`` calls."""
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        best_wall, best_cpu = min(best_wall, time.perf_counter() - w), min(best_cpu, time.process_time() - c)
    return best_wall, best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="codec directory (default: shipped)")
    parser.add_argument("--kodak", default=str(KODAK))
    parser.add_argument("--quality", type=float, default=3.0)
    parser.add_argument("--limit", type=int, default=None, help="first N Kodak images only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", default="codec_speed")
    args = parser.parse_args()

    import torch
    from PIL import Image

    from varinf.compression import compress_image, decompress_image, load_codec

    torch.set_num_threads(1)
    paths = sorted(Path(args.kodak).glob("kodim*.png"))[: args.limit]
    if not paths:
        raise SystemExit(f"no Kodak images under {args.kodak}")
    codec = load_codec(args.model)
    rows = []
    for path in paths:
        img = np.asarray(Image.open(path).convert("RGB"))
        enc = _timed(partial(compress_image, img, codec, args.quality), args.repeats)
        data = compress_image(img, codec, args.quality).data
        fast_pixels = decompress_image(data, codec)
        dec = _timed(partial(decompress_image, data, codec), args.repeats)
        fast = codec.decoding_synthesis
        codec.decoding_synthesis = lambda: codec.g_s  # the plain synthesis, for the ratio only
        try:
            plain_pixels = decompress_image(data, codec)
            plain = _timed(partial(decompress_image, data, codec), args.repeats)
        finally:
            codec.decoding_synthesis = fast
        diff = int(np.abs(fast_pixels.astype(int) - plain_pixels.astype(int)).max())
        rows.append({"image": path.name, "encode_wall": enc[0], "encode_cpu": enc[1], "decode_wall": dec[0],
                     "decode_cpu": dec[1], "plain_decode_wall": plain[0], "plain_decode_cpu": plain[1],
                     "max_pixel_diff_vs_plain": diff, "bytes": len(data)})  # fmt: skip
        print(f"{path.name}: decode {dec[0]:.3f} s wall / {dec[1]:.3f} s cpu (plain g_s {plain[1]:.3f} s cpu)")
    med = {k: float(np.median([r[k] for r in rows])) for k in rows[0] if k not in ("image",)}
    summary = {
        "model": args.model or "shipped",
        "model_id": codec.model_id().hex(),
        "quality": args.quality,
        "images": len(rows),
        "median_s_per_image": med,
        "max_pixel_diff_vs_plain": max(r["max_pixel_diff_vs_plain"] for r in rows),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": 1},
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(summary, indent=2))
    lines = [
        f"# Codec speed on Kodak ({len(rows)} images, quality {args.quality:g}, one thread)",
        "",
        f"Model: {summary['model']} (id {summary['model_id']}). Medians over images of the best of {args.repeats}.",
        "",
        "| step | wall s/image | CPU s/image |",
        "|---|---|---|",
        f"| encode | {med['encode_wall']:.3f} | {med['encode_cpu']:.3f} |",
        f"| decode (fast synthesis, shipped path) | {med['decode_wall']:.3f} | {med['decode_cpu']:.3f} |",
        f"| decode with the plain g_s | {med['plain_decode_wall']:.3f} | {med['plain_decode_cpu']:.3f} |",
        "",
        f"Largest pixel difference fast vs plain synthesis: {summary['max_pixel_diff_vs_plain']} grey level(s).",
        f"Machine: {summary['machine']}",
    ]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
