"""Lossy image coding on the 24 Kodak images: the learned varinf codec (real .vif files) vs Pillow's
JPEG, WebP and AVIF; rate-distortion points (PSNR, MS-SSIM), BD-rates vs JPEG and head to head vs each peer (over the common range),
real/estimated bits, timings, and the goals of issue 23.

Run:  python benchmarks/codec_rd.py                    (shipped codec; writes benchmarks/results/codec_rd.{json,md,png})
      python benchmarks/codec_rd.py --model runs/X     (another trained codec directory)
      python benchmarks/codec_rd.py --quick            (4 images, fewer settings: smoke test)
      python benchmarks/codec_rd.py --baselines-only   (Pillow points only -> results/codec_rd_baselines.json,
                                                        reused by later runs on the same images and settings)
      python benchmarks/codec_rd.py --report           (markdown and plot again from results/codec_rd.json)

Kodak is evaluation data only (the codec never trains on it). Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak"


def load_kodak(root: Path, limit: int | None) -> list[np.ndarray]:
    from PIL import Image

    paths = sorted(root.glob("kodim*.png"))[:limit]
    if not paths:
        sys.exit(f"no Kodak images under {root} (set --kodak)")
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]



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


GOALS = {  # issue 23, Kodak, head to head (negative: fewer bits than the peer at equal quality)
    "bd_vs_webp_psnr": -5.0, "bd_vs_webp_ms_ssim": -5.0, "bd_vs_avif_psnr": 15.0,
    "lowest_bpp": 0.15, "top_psnr": 38.0, "file_over_estimated": 1.01,
}  # fmt: skip


def measure(args) -> dict:
    import torch

    from provenance import run_environment
    from varinf.compression import load_codec
    from varinf.compression.evaluation.evaluate import BASELINE_QUALITIES, build_report, evaluate_learned

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    images = load_kodak(Path(args.kodak), 4 if args.quick else args.limit)
    baselines = {k: v[::3] for k, v in BASELINE_QUALITIES.items()} if args.quick else BASELINE_QUALITIES
    codec = load_codec(args.model)
    qmax = codec.max_quality
    qualities = args.qualities or ([0.0, qmax / 2, qmax] if args.quick else [qmax * i / 10 for i in range(11)])
    learned = evaluate_learned(codec, images, qualities, progress=sys.stderr.isatty())
    # the Pillow points do not depend on the model: reuse (or wait for) a cache computed by --baselines-only
    report = build_report({"learned": learned, **cached_baselines(images, baselines, compute=True)}, len(images))
    meta = json.loads((Path(args.model) if args.model else Path(codec_dir())).joinpath("model.json").read_text())
    learned = report.points["learned"]
    ratios = [p.rate_ratio for p in learned]
    info = {k: v for k, v in meta.get("info", {}).items() if k != "training_files"}
    info["training_files"] = len(meta.get("info", {}).get("training_files", []))
    return {
        "model": meta["config"] | {"model_id": meta["model_id"]},
        "training": info,
        "images": len(images),
        "bd_rate_vs_jpeg_psnr_percent": report.bd_rate_psnr,
        "bd_rate_vs_jpeg_ms_ssim_percent": report.bd_rate_ms_ssim,
        "head_to_head": {name: dict(zip(("psnr", "ms_ssim"), head_to_head_rates(report, name)))
                         for name in report.points if name != "learned"},
        "payload_over_estimated_bits": {"min": min(ratios), "max": max(ratios)},
        "file_over_estimated_bits": {"min": min(p.bpp / p.estimated_bpp for p in learned),
                                     "max": max(p.bpp / p.estimated_bpp for p in learned)},
        "learned_encode_s_per_image": float(np.mean([p.encode_s for p in learned])) / len(images),
        "learned_decode_s_per_image": float(np.mean([p.decode_s for p in learned])) / len(images),
        "learned_decode_cpu_s_per_image": float(np.mean([p.decode_cpu_s for p in learned])) / len(images),
        "environment": run_environment(torch.get_num_threads()),
        "report": json.loads(report.to_json()),
    }


def head_to_head_rates(report, name: str) -> tuple[float, float]:
    from varinf.compression.evaluation.evaluate import bd_rates

    return bd_rates(report.points[name], report.points["learned"])


def goal_lines(summary: dict) -> list[str]:
    ok = lambda good: "met" if good else "**missed**"
    h = summary["head_to_head"]
    learned = summary["report"]["points"]["learned"]
    low, top = min(p["bpp"] for p in learned), max(p["psnr"] for p in learned)
    ratio = summary["file_over_estimated_bits"]["max"]
    g = GOALS
    lines = [
        f"* lowest rate {low:.3f} bpp (goal ≤ {g['lowest_bpp']}: {ok(low <= g['lowest_bpp'])}); top quality "
        f"{top:.2f} dB PSNR (goal ≥ {g['top_psnr']:g}: {ok(top >= g['top_psnr'])})",
        f"* vs WebP: {h['WEBP']['psnr']:+.1f}% by PSNR, {h['WEBP']['ms_ssim']:+.1f}% by MS-SSIM (goal ≤ "
        f"{g['bd_vs_webp_psnr']:+g}% for both: {ok(max(h['WEBP'].values()) <= g['bd_vs_webp_psnr'])})",
        f"* vs AVIF: {h['AVIF']['psnr']:+.1f}% by PSNR (goal ≤ {g['bd_vs_avif_psnr']:+g}%: "
        f"{ok(h['AVIF']['psnr'] <= g['bd_vs_avif_psnr'])}), {h['AVIF']['ms_ssim']:+.1f}% by MS-SSIM",
        f"* file bits (headers included) / estimated bits: at most {ratio:.4f} (goal ≤ {g['file_over_estimated']}: "
        f"{ok(ratio <= g['file_over_estimated'])})",
    ]
    if "JPEG" in h and "bd_rate_vs_jpeg_psnr_percent" in summary:
        lines.append(f"* vs JPEG: {h['JPEG']['psnr']:+.1f}% by PSNR, {h['JPEG']['ms_ssim']:+.1f}% by MS-SSIM")
    return lines


def markdown(summary: dict, stem: str) -> str:
    report = _report(summary)
    model, env = summary["model"], summary["environment"]
    ratios = summary["payload_over_estimated_bits"]
    lines = [
        f"# Kodak ({summary['images']} images): varinf learned codec vs Pillow JPEG / WebP / AVIF",
        "",
        f"`{env['command']}` at commit {env['commit']}; torch {env['torch']}, numpy {env['numpy']}, Pillow "
        f"{env['pillow']}, {env['torch_threads']} thread(s), load average {env['load_average']}.",
        "",
        f"Model: {model['name']} ({model['prior']}, N={model['channels']}, M={model['latent_channels']}, "
        f"id {model['model_id']}); training: {json.dumps(summary['training'])}",
        "",
        report.to_markdown(),
        "",
        *head_to_head(report),
        "",
        *([f"Against the previously shipped model ({summary['vs_previous']['model_id']}, "
           f"{summary['vs_previous']['results']}): {summary['vs_previous']['psnr']:+.1f}% by PSNR, "
           f"{summary['vs_previous']['ms_ssim']:+.1f}% by MS-SSIM.", ""] if "vs_previous" in summary else []),
        "Goals (issue 23):",
        "",
        *goal_lines(summary),
        "",
        f"Real payload bits / model-estimated bits over all images: {ratios['min']:.4f} .. {ratios['max']:.4f}",
        f"Learned codec: encode {summary['learned_encode_s_per_image']:.2f} s/image, "
        f"decode {summary['learned_decode_s_per_image']:.2f} s/image wall, "
        f"{summary['learned_decode_cpu_s_per_image']:.2f} s/image CPU ({env['torch_threads']} thread(s); "
        "codec_speed.md has the timing on a pinned core)",
        "",
        f"![RD curves]({stem}.png)",
    ]
    return "\n".join(lines) + "\n"


def vs_previous(summary: dict, path: Path) -> dict:
    """BD-rates (PSNR, MS-SSIM) of this model against a previous model's learned points (its results JSON)."""
    from varinf.compression.evaluation.evaluate import bd_rates

    previous = json.loads(path.read_text())
    old = _report(previous).points["learned"]
    new = _report(summary).points["learned"]
    psnr_bd, ms_bd = bd_rates(old, new)
    return {"results": path.name, "model_id": previous["model"]["model_id"], "psnr": psnr_bd, "ms_ssim": ms_bd}


def _report(summary: dict):
    from varinf.compression.evaluation.evaluate import RDPoint, build_report

    fields = RDPoint.__dataclass_fields__
    points = {k: [RDPoint(**{f: v for f, v in p.items() if f in fields}) for p in pts]
              for k, pts in summary["report"]["points"].items()}  # fmt: skip
    return build_report(points, summary["images"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="codec directory (default: shipped)")
    parser.add_argument("--kodak", default=str(KODAK))
    parser.add_argument("--qualities", type=float, nargs="+", default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--name", default="codec_rd", help="output file stem in benchmarks/results")
    parser.add_argument("--baselines-only", action="store_true", help="compute and cache the Pillow points only")
    parser.add_argument("--limit", type=int, default=None, help="first N Kodak images only")
    parser.add_argument("--report", action="store_true", help="markdown and plot again from the JSON only")
    parser.add_argument("--previous", default=None,
                        help="results JSON of the previously shipped model: adds its BD-rates against this one")  # fmt: skip
    args = parser.parse_args()
    stem = args.name + ("_quick" if args.quick else "")
    if args.baselines_only:
        from varinf.compression.evaluation.evaluate import BASELINE_QUALITIES

        cached_baselines(load_kodak(Path(args.kodak), args.limit), BASELINE_QUALITIES, compute=True)
        return
    if args.report:
        summary = json.loads((RESULTS / f"{stem}.json").read_text())
    else:
        summary = measure(args)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{stem}.json").write_text(json.dumps(summary, indent=2))
    if args.previous:
        summary["vs_previous"] = vs_previous(summary, Path(args.previous))
        (RESULTS / f"{stem}.json").write_text(json.dumps(summary, indent=2))
    text = markdown(summary, stem)
    (RESULTS / f"{stem}.md").write_text(text)
    plot(_report(summary), RESULTS / f"{stem}.png", f"Kodak ({summary['images']} images)")
    print(text)


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
