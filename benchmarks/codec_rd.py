"""Lossy image coding on the 24 Kodak images: the learned varinf codec (real .vif files) vs Pillow's
JPEG, WebP and AVIF; rate-distortion points (PSNR, MS-SSIM), BD-rate vs JPEG, real/estimated bits, timings.

Run:  python benchmarks/codec_rd.py                    (shipped codec; writes benchmarks/results/codec_rd.{json,md,png})
      python benchmarks/codec_rd.py --model runs/X     (another trained codec directory)
      python benchmarks/codec_rd.py --quick            (4 images, fewer settings: smoke test)
      python benchmarks/codec_rd.py --baselines-only   (Pillow points only -> results/codec_rd_baselines.json,
                                                        reused by later runs on the same images and settings)

Kodak is evaluation data only (the codec never trains on it). Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
GOAL_BD_RATE = -35.0  # percent vs JPEG, by PSNR and by MS-SSIM (issue 14; WebP: about -35% by PSNR)
KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak"


def load_kodak(root: Path, limit: int | None) -> list[np.ndarray]:
    from PIL import Image

    paths = sorted(root.glob("kodim*.png"))[:limit]
    if not paths:
        sys.exit(f"no Kodak images under {root} (set --kodak)")
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]



def _met(bd: dict) -> str:
    value = bd.get("learned", np.nan)
    return f"{'met' if value <= GOAL_BD_RATE else 'NOT met'} ({value:+.1f}%)"


def head_to_head(report) -> list[str]:
    """BD-rate of the learned codec against each baseline directly, over the two curves' common quality range."""
    from varinf.compression.evaluation.evaluate import bd_rates

    lines = ["| learned vs | BD-rate (PSNR) | BD-rate (MS-SSIM dB) |", "|---|---|---|"]
    for name in report.points:
        if name == "learned":
            continue
        rates = bd_rates(report.points[name], report.points["learned"])
        cells = ["no overlap" if np.isnan(v) else f"{v:+.1f}%" for v in rates]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return ["Head to head (negative: the learned codec needs fewer bits at equal quality, over the common range):",
            "", *lines]

def plot(report, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    styles = {"learned": ("C3", "o", "varinf hyperprior (learned)"), "JPEG": ("C0", "s", "JPEG (Pillow)"),
              "WEBP": ("C2", "^", "WebP (Pillow)"), "AVIF": ("C1", "D", "AVIF (Pillow)")}  # fmt: skip
    for name, pts in report.points.items():
        color, marker, label = styles.get(name, ("k", "x", name))
        bpp = [p.bpp for p in pts]
        axes[0].plot(bpp, [p.psnr for p in pts], marker=marker, color=color, label=label, ms=4)
        axes[1].plot(bpp, [-10 * np.log10(1 - p.ms_ssim) for p in pts], marker=marker, color=color, label=label, ms=4)
    for ax, ylabel in zip(axes, ("PSNR (dB)", "MS-SSIM (dB) = -10 log10(1 - MS-SSIM)")):
        ax.set_xlabel("bits per pixel (real files)")
        ax.set_ylabel(ylabel)
        ax.set_xlim(0, 2.0)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="codec directory (default: shipped)")
    parser.add_argument("--kodak", default=str(KODAK))
    parser.add_argument("--qualities", type=float, nargs="+", default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--name", default="codec_rd", help="output file stem in benchmarks/results")
    parser.add_argument("--baselines-only", action="store_true", help="compute and cache the Pillow points only")
    parser.add_argument("--limit", type=int, default=None, help="first N Kodak images only")
    args = parser.parse_args()

    import torch

    from varinf.compression import load_codec
    from varinf.compression.evaluation.evaluate import BASELINE_QUALITIES, build_report, evaluate_learned

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    images = load_kodak(Path(args.kodak), 4 if args.quick else args.limit)
    baselines = {k: v[::3] for k, v in BASELINE_QUALITIES.items()} if args.quick else BASELINE_QUALITIES
    if args.baselines_only:
        cached_baselines(images, baselines, compute=True)
        return
    codec = load_codec(args.model)
    qmax = codec.max_quality
    qualities = args.qualities or ([0.0, qmax / 2, qmax] if args.quick else [qmax * i / 10 for i in range(11)])
    learned = evaluate_learned(codec, images, qualities, progress=sys.stderr.isatty())
    # the Pillow points do not depend on the model: reuse (or wait for) a cache computed by --baselines-only
    report = build_report({"learned": learned, **cached_baselines(images, baselines, compute=True)}, len(images))

    meta = json.loads((Path(args.model) if args.model else Path(codec_dir())).joinpath("model.json").read_text())
    learned = report.points["learned"]
    ratios = [p.rate_ratio for p in learned]
    summary = {
        "model": meta["config"] | {"model_id": meta["model_id"]},
        "training": meta.get("info", {}),
        "images": len(images),
        "bd_rate_vs_jpeg_psnr_percent": report.bd_rate_psnr,
        "bd_rate_vs_jpeg_ms_ssim_percent": report.bd_rate_ms_ssim,
        "payload_over_estimated_bits": {"min": min(ratios), "max": max(ratios)},
        "learned_encode_s_per_image": float(np.mean([p.encode_s for p in learned])) / len(images),
        "learned_decode_s_per_image": float(np.mean([p.decode_s for p in learned])) / len(images),
        "learned_decode_cpu_s_per_image": float(np.mean([p.decode_cpu_s for p in learned])) / len(images),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = args.name + ("_quick" if args.quick else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps(summary | {"report": json.loads(report.to_json())}, indent=2))
    lines = [
        f"# Kodak ({len(images)} images): varinf learned codec vs Pillow JPEG / WebP / AVIF",
        "",
        f"Model: {meta['config']['name']} ({meta['config']['prior']}, N={meta['config']['channels']}, "
        f"M={meta['config']['latent_channels']}, id {meta['model_id']}); training: {json.dumps(meta.get('info', {}))}",
        "",
        report.to_markdown(),
        "",
        *head_to_head(report),
        "",
        f"Goal: BD-rate vs JPEG ≤ {GOAL_BD_RATE:.0f}% by PSNR and by MS-SSIM (CompressAI's published hyperprior: "
        f"about -55% by PSNR): PSNR {_met(report.bd_rate_psnr)}, MS-SSIM {_met(report.bd_rate_ms_ssim)}.",
        f"Real payload bits / model-estimated bits over all images: {min(ratios):.4f} .. {max(ratios):.4f}",
        f"Learned codec: encode {summary['learned_encode_s_per_image']:.2f} s/image, "
        f"decode {summary['learned_decode_s_per_image']:.2f} s/image wall, "
        f"{summary['learned_decode_cpu_s_per_image']:.2f} s/image CPU ({torch.get_num_threads()} thread(s))",
        f"Machine: {summary['machine']}",
        "",
        f"![RD curves]({stem}.png)",
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    plot(report, RESULTS / f"{stem}.png", f"Kodak ({len(images)} images)")
    print("\n".join(lines))


def cached_baselines(images: list[np.ndarray], baselines: dict[str, list[int]], compute: bool):
    """Pillow RD points from results/codec_rd_baselines.json when it matches these images, settings and
    Pillow version (they do not depend on the learned model); computed and saved when ``compute``."""
    import hashlib

    import PIL

    from varinf.compression.evaluation.evaluate import RDPoint, evaluate_pillow

    h = hashlib.sha256()
    for img in images:
        h.update(img.tobytes())
    key = {"images": h.hexdigest()[:16], "settings": baselines, "pillow": PIL.__version__}
    path, busy = RESULTS / "codec_rd_baselines.json", RESULTS / "codec_rd_baselines.computing"
    while busy.is_file() and _alive(busy):  # another run is computing them
        time.sleep(10)
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved["key"] == key:
            return {k: [RDPoint(**p) for p in v] for k, v in saved["points"].items()}
    if not compute:
        return None
    from dataclasses import asdict

    RESULTS.mkdir(parents=True, exist_ok=True)
    busy.write_text(str(os.getpid()))
    try:
        points = {fmt: evaluate_pillow(images, fmt, qs, progress=sys.stderr.isatty()) for fmt, qs in baselines.items()}
        blob = {"key": key, "points": {k: [asdict(p) for p in v] for k, v in points.items()}}
        path.write_text(json.dumps(blob, indent=2))
    finally:
        busy.unlink(missing_ok=True)
    return points


def _alive(marker: Path) -> bool:
    """Whether the process that wrote ``marker`` (its pid) still runs; a stale marker is ignored."""
    try:
        os.kill(int(marker.read_text()), 0)
    except (ValueError, OSError):
        return False
    return True


def codec_dir() -> str:
    from varinf.compression.lossy.pretrained import DEFAULT_MODEL_DIR

    return str(DEFAULT_MODEL_DIR)


if __name__ == "__main__":
    main()
