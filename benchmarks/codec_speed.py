"""Encode/decode time of the learned lossy codec on Kodak, one thread: wall and CPU seconds per image.

Run:  taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/codec_speed.py   (shipped codec, 24 images, default quality)
      python benchmarks/codec_speed.py --report                          (markdown again from the JSON)
      taskset -c 0 python benchmarks/codec_speed.py --model runs/X --limit 6 --name codec_speed_X

Decoding is timed twice per image: as shipped (fast synthesis: channels-last, fused inverse GDN, sub-pixel
last layer; see varinf.compression.lossy.fast_synthesis) and with the plain training-time synthesis g_s, so the
ratio isolates the synthesis rewrite. CPU seconds (time.process_time) are reported next to wall seconds:
on a shared machine the wall time includes waiting for the core. Medians over images (each the best of
``--repeats``). Pillow's WebP and AVIF are timed on the same images as peers. Writes
benchmarks/results/<name>.{json,md}. Kodak is evaluation data only.
"""

from __future__ import annotations

import argparse
import io
import json
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


GOALS = {"encode": 0.6, "decode": 0.3}  # seconds per Kodak image, one thread (issue 23)
PEERS = {"WEBP": 75, "AVIF": 60}  # Pillow encoders timed on the same images (one thread; quality as named)


def _pillow(img: np.ndarray, fmt: str, quality: int) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, fmt, quality=quality)
    return buf.getvalue()


def _decode_pillow(data: bytes) -> None:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()


def measure(args) -> dict:
    import torch
    from PIL import Image

    from provenance import run_environment
    from varinf.compression import compress_image, decompress_image, load_codec

    torch.set_num_threads(1)
    paths = sorted(Path(args.kodak).glob("kodim*.png"))[: args.limit]
    if not paths:
        raise SystemExit(f"no Kodak images under {args.kodak}")
    codec = load_codec(args.model)
    quality = codec.default_quality if args.quality is None else args.quality
    rows = []
    for path in paths:
        img = np.asarray(Image.open(path).convert("RGB"))
        enc = _timed(partial(compress_image, img, codec, quality), args.repeats)
        data = compress_image(img, codec, quality).data
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
        row = {"image": path.name, "encode_wall": enc[0], "encode_cpu": enc[1], "decode_wall": dec[0],
               "decode_cpu": dec[1], "plain_decode_wall": plain[0], "plain_decode_cpu": plain[1],
               "max_pixel_diff_vs_plain": diff, "bytes": len(data)}  # fmt: skip
        for fmt, q in PEERS.items():
            peer = _pillow(img, fmt, q)
            row[f"{fmt}_encode_cpu"] = _timed(partial(_pillow, img, fmt, q), args.repeats)[1]
            row[f"{fmt}_decode_cpu"] = _timed(partial(_decode_pillow, peer), args.repeats)[1]
            row[f"{fmt}_bytes"] = len(peer)
        rows.append(row)
        print(f"{path.name}: decode {dec[0]:.3f} s wall / {dec[1]:.3f} s cpu (plain g_s {plain[1]:.3f} s cpu)")
    return {
        "model": args.model or "shipped",
        "model_id": codec.model_id().hex(),
        "prior": codec.config.prior,
        "quality": quality,
        "repeats": args.repeats,
        "images": len(rows),
        "median_s_per_image": {k: float(np.median([r[k] for r in rows])) for k in rows[0] if k != "image"},
        "max_pixel_diff_vs_plain": max(r["max_pixel_diff_vs_plain"] for r in rows),
        "peers": PEERS,
        "environment": run_environment(1),
        "rows": rows,
    }


def markdown(summary: dict) -> str:
    med, env = summary["median_s_per_image"], summary["environment"]
    ok = lambda v, goal: "met" if v <= goal else "**missed**"
    lines = [
        f"# Codec speed on Kodak ({summary['images']} images, quality {summary['quality']:g}, one thread)",
        "",
        f"`{env['command']}` at commit {env['commit']}; torch {env['torch']}, numpy {env['numpy']}, Pillow "
        f"{env['pillow']}; 1 torch thread, OMP_NUM_THREADS={env['omp_num_threads']}, cores {env['affinity']}, "
        f"load average {env['load_average']} (a shared machine: CPU seconds do not count waiting for the core).",
        "",
        f"Model: {summary['model']} ({summary['prior']}, id {summary['model_id']}). Medians over images of the best of "
        f"{summary['repeats']}.",
        "",
        "| step | wall s/image | CPU s/image |",
        "|---|---|---|",
        f"| encode | {med['encode_wall']:.3f} | {med['encode_cpu']:.3f} |",
        f"| decode (fast synthesis, shipped path) | {med['decode_wall']:.3f} | {med['decode_cpu']:.3f} |",
        f"| decode with the plain g_s | {med['plain_decode_wall']:.3f} | {med['plain_decode_cpu']:.3f} |",
    ]
    for fmt, q in summary.get("peers", {}).items():
        lines.append(f"| Pillow {fmt} q{q}: encode / decode | | {med[f'{fmt}_encode_cpu']:.3f} / "
                     f"{med[f'{fmt}_decode_cpu']:.3f} |")  # fmt: skip
    lines += [
        "",
        f"Goals (issue 23, CPU s): encode ≤ {GOALS['encode']} s: {ok(med['encode_cpu'], GOALS['encode'])}; decode ≤ "
        f"{GOALS['decode']} s: {ok(med['decode_cpu'], GOALS['decode'])}.",
        f"Largest pixel difference fast vs plain synthesis: {summary['max_pixel_diff_vs_plain']} grey level(s).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="codec directory (default: shipped)")
    parser.add_argument("--kodak", default=str(KODAK))
    parser.add_argument("--quality", type=float, default=None, help="default: the model's default quality")
    parser.add_argument("--limit", type=int, default=None, help="first N Kodak images only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", default="codec_speed")
    parser.add_argument("--report", action="store_true", help="markdown again from the JSON only")
    args = parser.parse_args()
    path = RESULTS / f"{args.name}.json"
    if args.report:
        summary = json.loads(path.read_text())
    else:
        summary = measure(args)
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2))
    text = markdown(summary)
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
