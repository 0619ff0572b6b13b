"""Lossless bits-back coding (BB-ANS) of the binarized MNIST test set vs general-purpose and image codecs.

Run:  python benchmarks/bitsback_mnist.py                 (shipped VAE, 10000 test images; ~5 min on a busy 2-core CPU)
      python benchmarks/bitsback_mnist.py --limit 1000    (fewer images)
      python benchmarks/bitsback_mnist.py --model runs/vae_mnist_8bit --eight-bit   (8-bit MNIST, logistic VAE)

Writes benchmarks/results/bitsback_mnist{,_8bit}.{json,md}. Data: MNIST test images binarized once with
``varinf.data.mnist.fixed_binarize(seed=0)`` (pixel ~ Bernoulli(intensity/255)), or the raw 8-bit images.
Every codec compresses the same images; bits/dim = file bits / (images x 784).

* BB-ANS: one ``.vif`` file for the whole sequence (header, seed words and first-image overhead included);
  also the net stack growth per image vs the model's -ELBO (64 posterior samples, analytic KL).
* gzip/bz2/lzma (level 9): the whole set as one byte stream, both one byte per pixel and bit-packed
  (``np.packbits``), the better of the two reported.
* PNG (optimize) and WebP-lossless (method 6): Pillow, each image as its own file, and all images tiled
  into one 100x100 grid image; the better reported. Timings: images/s of encode and decode, one thread.
Never imported by the package.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import io
import json
import lzma
import platform
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"
MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
GOAL = 0.19  # bits/dim, BB-ANS's figure (Townsend et al. 2019, arXiv:1901.04866)


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def stream_codecs(x: np.ndarray, binary: bool) -> dict[str, dict]:
    """gzip, bz2, lzma on the whole array (bytes per pixel, or packed bits for binary data)."""
    mods = {"gzip": gzip, "bz2": bz2, "lzma": lzma}
    n = len(x)
    out = {}
    for name, mod in mods.items():
        best = None
        layouts = {"bytes": x.tobytes()}
        if binary:
            layouts["packed bits"] = np.packbits(x.reshape(-1)).tobytes()
        for layout, raw in layouts.items():
            kw = {"preset": 9} if mod is lzma else {"compresslevel": 9}
            blob, te = timed(lambda r=raw, m=mod, k=kw: m.compress(r, **k))
            back, td = timed(mod.decompress, blob)
            assert back == raw
            res = {"bytes": len(blob), "layout": layout, "encode_img_s": n / te, "decode_img_s": n / td}
            if best is None or res["bytes"] < best["bytes"]:
                best = res
        out[name] = best
    return out


def image_codecs(x: np.ndarray, binary: bool) -> dict[str, dict]:
    """PNG and WebP-lossless via Pillow: per-image files, and one grid image of all images."""
    from PIL import Image

    n, h, w = x.shape
    pix = (x * 255).astype(np.uint8) if binary else x.astype(np.uint8)
    mode = "1" if binary else "L"
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    grid = np.zeros((rows * h, cols * w), np.uint8)
    for i in range(n):
        grid[(i // cols) * h : (i // cols + 1) * h, (i % cols) * w : (i % cols + 1) * w] = pix[i]
    out = {}
    for name, kw in (("PNG", {"format": "PNG", "optimize": True}), ("WebP-lossless", {"format": "WEBP", "lossless": True, "quality": 100, "method": 6})):  # fmt: skip
        best = None
        for layout, images in (("per image", list(pix)), ("one grid image", [grid])):

            def enc(images=images, kw=kw):
                blobs = []
                for im in images:
                    buf = io.BytesIO()
                    img = Image.fromarray(im)
                    (img.convert(mode) if kw["format"] == "PNG" else img).save(buf, **kw)
                    blobs.append(buf.getvalue())
                return blobs

            blobs, te = timed(enc)

            def dec(blobs=blobs):
                return [np.asarray(Image.open(io.BytesIO(b)).convert("L")) for b in blobs]

            back, td = timed(dec)
            restored = np.stack(back) if layout == "per image" else back[0][None]
            expected = pix if layout == "per image" else grid[None]
            assert np.array_equal(restored, expected), f"{name} is not lossless here"
            res = {"bytes": sum(map(len, blobs)), "layout": layout, "encode_img_s": n / te, "decode_img_s": n / td}
            if best is None or res["bytes"] < best["bytes"]:
                best = res
        out[name] = best
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="bits-back model dir or a varinf VAE run (default: shipped)")
    parser.add_argument("--eight-bit", action="store_true", help="8-bit MNIST (discretized-logistic VAE)")
    parser.add_argument("--limit", type=int, default=10_000)
    parser.add_argument("--mnist", default=str(MNIST))
    args = parser.parse_args()
    torch.set_num_threads(1)

    from tqdm.auto import tqdm

    from varinf.compression import compress_lossless, decompress_lossless, load_bitsback
    from varinf.data.mnist import fixed_binarize, load_mnist

    codec = load_bitsback(args.model)
    model_name = args.model or "shipped (varinf/assets/bitsback_mnist)"
    images = load_mnist(args.mnist).test.images[: args.limit]
    x = images if args.eight_bit else fixed_binarize(images, seed=0)
    n, dims = len(x), 784
    symbols = x.numpy().astype(np.uint8)

    neg_elbo = []
    with torch.no_grad():
        for chunk in x.float().split(500):  # 64 samples x 500 images at a time (memory)
            q = codec.vae.q(chunk)
            distortion = -codec.vae.p_x(q.sample((64,))).log_prob(chunk).mean(0)
            neg_elbo.append(distortion + torch.distributions.kl_divergence(q, codec.vae.p_z()))
    neg_elbo_bits = float(torch.cat(neg_elbo).mean()) / np.log(2)

    with tqdm(total=n, desc="encode", disable=None) as bar:
        coded, te = timed(lambda: compress_lossless(symbols[:, 0], codec, progress=bar))
    with tqdm(total=n, desc="decode", disable=None) as bar:
        back, td = timed(lambda: decompress_lossless(coded.data, codec, progress=bar))
    assert np.array_equal(back, symbols[:, 0]), "bits-back round trip failed"
    net_per_image = coded.net_bits / n
    results = {
        "BB-ANS (varinf)": {
            "bytes": len(coded.data),
            "layout": "one .vif file",
            "encode_img_s": n / te,
            "decode_img_s": n / td,
        },
        **stream_codecs(symbols[:, 0], binary=not args.eight_bit),
        **image_codecs(symbols[:, 0], binary=not args.eight_bit),
    }
    for r in results.values():
        r["bits_per_dim"] = 8 * r["bytes"] / (n * dims)
    bb = results["BB-ANS (varinf)"]["bits_per_dim"]
    summary = {
        "data": "8-bit MNIST test" if args.eight_bit else "binarized MNIST test (fixed_binarize seed 0)",
        "model": model_name,
        "latent_bits": codec.bins.bits,
        "images": n,
        "neg_elbo_bits_per_image": neg_elbo_bits,
        "neg_elbo_bits_per_dim": neg_elbo_bits / dims,
        "net_bits_per_image": net_per_image,
        "net_over_neg_elbo": net_per_image / neg_elbo_bits,
        "file_bits_per_dim": bb,
        "goal_bits_per_dim": None if args.eight_bit else GOAL,
        "machine": f"{platform.machine()}, torch {torch.__version__}, 1 thread",
        "codecs": results,
    }
    RESULTS.mkdir(exist_ok=True)
    stem = "bitsback_mnist_8bit" if args.eight_bit else "bitsback_mnist"
    (RESULTS / f"{stem}.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        f"# Lossless coding of {summary['data']} ({n} images, 28x28)",
        "",
        f"Model: {model_name}, {codec.bins.bits}-bit max-entropy latent bins. Machine: {summary['machine']}.",
        f"-ELBO = {neg_elbo_bits:.2f} bits/image ({neg_elbo_bits / dims:.4f} bits/dim); BB-ANS net stack growth "
        f"{net_per_image:.2f} bits/image (ratio {net_per_image / neg_elbo_bits:.4f}); whole file {bb:.4f} bits/dim.",
        "",
        "| codec | layout | bits/dim | vs BB-ANS | encode img/s | decode img/s |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in sorted(results.items(), key=lambda kv: kv[1]["bits_per_dim"]):
        lines.append(f"| {name} | {r['layout']} | {r['bits_per_dim']:.4f} | {r['bits_per_dim'] / bb:.2f}x | "
                     f"{r['encode_img_s']:.0f} | {r['decode_img_s']:.0f} |")  # fmt: skip
    if not args.eight_bit:
        verdict = "met" if bb <= GOAL else "NOT met"
        lines += ["", f"Goal ≤ {GOAL} bits/dim (BB-ANS, Townsend et al. 2019): {verdict} ({bb:.4f})."]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
