"""Checkpoint selection for the lossy codec on held-out packaged photos (never Kodak): real files, BD-rates.

The validation set is the ``kde-photos`` source of :mod:`varinf.compression.lossy.photos` (the 11 photographs among
KDE Plasma's wallpapers, ``apt-get install plasma-workspace-wallpapers``), downscaled to 512 pixels on the short
side (Lanczos, as Kodak's 512 x 768); no codec trains on it. Every model is measured with real ``.vif`` files at
each of its integer quality levels (or ``--qualities``), and compared with the reference model (default: the
shipped codec) by BD-rate over the common quality range, by PSNR and by MS-SSIM (dB); WebP and AVIF (Pillow) on
the same images are the peers. The selected model is the one with the lowest mean of its two BD-rates.

Run:  python benchmarks/codec_validation.py --models runs/cb/snapshots/step-* runs/cb     (reference: shipped)
      python benchmarks/codec_validation.py --report                  (markdown again from the JSON)

Results (measured points are kept by model id and reused): benchmarks/results/codec_validation.{json,md}.
Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from provenance import run_environment

RESULTS = Path(__file__).resolve().parent / "results"
SHORT_SIDE = 512
PEERS = {"WEBP": [10, 20, 30, 40, 50, 60, 70, 80, 90, 95], "AVIF": [10, 20, 30, 40, 50, 60, 70, 80, 90]}


def validation_photos():
    from varinf.compression.lossy.photos import VALIDATION_SOURCES, packaged_photos

    photos = packaged_photos(VALIDATION_SOURCES, max_side=SHORT_SIDE, repeat={})
    if photos.missing:
        sys.exit(f"validation photos missing: {photos.missing}")
    return photos


def measure(args) -> dict:
    import torch

    from varinf.compression import load_codec
    from varinf.compression.evaluation.evaluate import evaluate_learned, evaluate_pillow

    torch.set_num_threads(1)
    path = RESULTS / f"{args.name}.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    photos = validation_photos()
    images = photos.images
    manifest = photos.manifest()
    same_images = old.get("images") == manifest
    models = old.get("models", {}) if same_images else {}
    peers = old.get("peers", {}) if same_images else {}
    for directory in [args.reference, *args.models]:
        codec = load_codec(directory)
        key = codec.model_id().hex()
        info = json.loads((Path(directory) / "model.json").read_text()).get("info", {})
        qualities = args.qualities or [float(q) for q in range(int(codec.max_quality) + 1)]
        if key in models and models[key]["qualities"] == qualities:
            models[key]["paths"] = sorted(set(models[key]["paths"]) | {str(directory)})
            continue
        print(f"{directory}: {len(images)} images x {len(qualities)} qualities", flush=True)
        points = evaluate_learned(codec, images, qualities, progress=False)
        models[key] = {"paths": [str(directory)], "name": codec.config.name, "prior": codec.config.prior,
                       "steps": info.get("steps"), "lambdas": list(codec.config.lambdas), "qualities": qualities,
                       "points": [asdict(p) for p in points]}  # fmt: skip
    for fmt, settings in PEERS.items():
        if peers.get(fmt, {}).get("settings") != settings:
            peers[fmt] = {"settings": settings,
                          "points": [asdict(p) for p in evaluate_pillow(images, fmt, settings, progress=False)]}  # fmt: skip
    reference = load_codec(args.reference).model_id().hex()
    result = {"benchmark": "codec_validation", "images": manifest, "short_side": SHORT_SIDE,
              "reference": reference, "models": models, "peers": peers,
              "environment": run_environment(1)}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return result


def _points(entries: list[dict]):
    from varinf.compression.evaluation.evaluate import RDPoint

    return [RDPoint(**{k: v for k, v in p.items() if k in RDPoint.__dataclass_fields__}) for p in entries]


def scores(result: dict) -> list[dict]:
    """Per model: BD-rates (percent) vs the reference model and vs each peer, by PSNR and MS-SSIM."""
    from varinf.compression.evaluation.evaluate import bd_rates

    ref = _points(result["models"][result["reference"]]["points"])
    rows = []
    for key, entry in result["models"].items():
        pts = _points(entry["points"])
        row = {"model_id": key, "name": entry["name"], "paths": entry["paths"], "steps": entry["steps"],
               "bpp": [pts[0].bpp, pts[-1].bpp], "psnr": [pts[0].psnr, pts[-1].psnr],
               "vs_reference": bd_rates(ref, pts)}  # fmt: skip
        for fmt, peer in result["peers"].items():
            row[f"vs_{fmt}"] = bd_rates(_points(peer["points"]), pts)
        rows.append(row)
    return rows


def markdown(result: dict) -> str:
    rows = scores(result)
    candidates = [r for r in rows if r["model_id"] != result["reference"]]
    best = min(candidates, key=lambda r: float(np.mean(r["vs_reference"])), default=None)
    env = result["environment"]
    names = ", ".join(Path(i["name"]).name for i in result["images"])
    lines = [
        f"# Codec checkpoint selection on {len(result['images'])} held-out photos (not Kodak)",
        "",
        f"`{env['command']}` at commit {env['commit']}; torch {env['torch']}, numpy {env['numpy']}, Pillow "
        f"{env['pillow']}, {env['torch_threads']} thread(s), load average {env['load_average']}.",
        "",
        f"Images: {names} (KDE Plasma wallpapers that are photographs, short side {result['short_side']} px; "
        "SHA-256 of each file in the JSON). Real .vif files at every integer quality level. BD-rates over the common "
        "range of the two curves; negative: fewer bits at equal quality.",
        "",
        "| model | steps | bpp span | PSNR span (dB) | vs reference (PSNR) | vs reference (MS-SSIM) | vs WebP (PSNR) "
        "| vs WebP (MS-SSIM) | vs AVIF (PSNR) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda v: "n/a" if np.isnan(v) else f"{v:+.1f}%"
    for r in sorted(rows, key=lambda r: (r["model_id"] != result["reference"], r["steps"] or 0)):
        label = ("reference " if r["model_id"] == result["reference"] else "") + f"{r['name']} ({r['model_id']})"
        lines.append(
            f"| {label} | {r['steps'] or ''} | {r['bpp'][0]:.3f} .. {r['bpp'][1]:.3f} | {r['psnr'][0]:.2f} .. "
            f"{r['psnr'][1]:.2f} | {fmt(r['vs_reference'][0])} | {fmt(r['vs_reference'][1])} | {fmt(r['vs_WEBP'][0])} "
            f"| {fmt(r['vs_WEBP'][1])} | {fmt(r['vs_AVIF'][0])} |"
        )
    if best is not None:
        lines += ["", f"Selected (lowest mean BD-rate vs the reference): {best['name']} {best['model_id']} "
                      f"({', '.join(best['paths'])})."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=[], help="codec directories to compare")
    parser.add_argument("--reference", default=None, help="reference codec directory (default: shipped)")
    parser.add_argument("--qualities", type=float, nargs="+", default=None)
    parser.add_argument("--name", default="codec_validation")
    parser.add_argument("--report", action="store_true", help="write the markdown from the JSON only")
    args = parser.parse_args()
    if args.reference is None:
        from varinf.compression.lossy.pretrained import DEFAULT_MODEL_DIR

        args.reference = str(DEFAULT_MODEL_DIR)
    path = RESULTS / f"{args.name}.json"
    result = json.loads(path.read_text()) if args.report else measure(args)
    text = markdown(result)
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
