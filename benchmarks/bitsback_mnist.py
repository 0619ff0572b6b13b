"""Lossless bits-back coding (BB-ANS) of the binarized MNIST test set vs general-purpose and image codecs.

Run:  taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/bitsback_mnist.py   (shipped VAE, 10000 test images)
      python benchmarks/bitsback_mnist.py --limit 1000    (fewer images)
      python benchmarks/bitsback_mnist.py --model runs/vae_mnist_8bit --eight-bit   (8-bit MNIST, logistic VAE)
      python benchmarks/bitsback_mnist.py --report [--eight-bit]     (the markdown again from the JSON)

Writes benchmarks/results/bitsback_mnist{,_8bit}.{json,md}. Data: MNIST test images binarized once with
``varinf.data.mnist.fixed_binarize(seed=0)`` (pixel ~ Bernoulli(intensity/255)), or the raw 8-bit images.
Every codec compresses the same images; bits/dim = file bits / (images x 784).

* BB-ANS: one ``.vif`` file for the whole sequence (header, seed words and first-image overhead included);
  also the net stack growth per image vs the float model's -ELBO (64 posterior samples, analytic KL): the ratio
  includes what the integer model (fixed-point networks, 24-bit pmfs, latent bins) costs. Speed: encode and decode
  of the whole set ``--repeats`` times on one thread, median images/s, by the wall clock and by the process's CPU
  time (on a shared machine the CPU time is the one that measures the code). Portability: the file is decoded, and
  the images encoded again, in fresh processes under ``ATEN_CPU_CAPABILITY=default`` (with numpy's SIMD dispatch
  and OpenBLAS's kernels forced to generic ones), under ``avx2``, and with 2 threads; bytes and arrays must match.
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
import lzma
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

import _results

RESULTS = _results.RESULTS
MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
GOAL = 0.18  # bits/dim (BB-ANS's published figure is 0.19; Townsend et al. 2019, arXiv:1901.04866)
SPEED_GOAL = 1000  # images/s, encode and decode, one thread
PORTABLE = """
import hashlib, sys
import numpy as np
from varinf.compression import compress_lossless, decompress_lossless, load_bitsback
codec = load_bitsback(sys.argv[3] if len(sys.argv) > 3 else None)
back = decompress_lossless(open(sys.argv[2], "rb").read(), codec)
data = compress_lossless(np.load(sys.argv[1]), codec).data
print(hashlib.sha256(data).hexdigest(), hashlib.sha256(back.tobytes()).hexdigest())
"""


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


def timed_repeats(fn, repeats: int):
    """``fn()``'s last result and the median wall-clock and CPU seconds of ``repeats`` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return out, float(np.median(walls)), float(np.median(cpus))


def portability(symbols: np.ndarray, data: bytes, model: str | None) -> dict[str, bool]:
    """Decode ``data`` and encode ``symbols`` again in fresh processes under other kernels / thread counts."""
    import hashlib
    import subprocess
    import sys
    import tempfile

    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_dispatch__

    settings = {
        "ATEN_CPU_CAPABILITY=default (+ generic numpy SIMD and OpenBLAS kernels)": {
            "ATEN_CPU_CAPABILITY": "default", "NPY_DISABLE_CPU_FEATURES": ",".join(__cpu_dispatch__),
            "OPENBLAS_CORETYPE": "Prescott"},
        "ATEN_CPU_CAPABILITY=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
        "2 threads": {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
    }  # fmt: skip
    expected = [hashlib.sha256(data).hexdigest(), hashlib.sha256(symbols.tobytes()).hexdigest()]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", symbols)
        with open(f"{tmp}/x.vif", "wb") as f:
            f.write(data)
        for name, env in settings.items():
            args = [sys.executable, "-c", PORTABLE, f"{tmp}/x.npy", f"{tmp}/x.vif", *([model] if model else [])]
            run = subprocess.run(args, env={**os.environ, "OMP_NUM_THREADS": "1", **env}, capture_output=True,
                                 text=True)  # fmt: skip
            out[name] = run.returncode == 0 and run.stdout.split()[-2:] == expected
    return out


def markdown(summary: dict) -> str:
    """The report, from the JSON alone."""
    results, n = summary["codecs"], summary["images"]
    bbr = results["BB-ANS (varinf)"]
    bb, neg_elbo_bits, net = summary["file_bits_per_dim"], summary["neg_elbo_bits_per_image"], summary["net_bits_per_image"]
    lines = [
        f"# Lossless coding of {summary['data']} ({n} images, 28x28)",
        "",
        *_results.provenance_lines(summary["meta"]),
        "",
        f"Model: {summary['model']}, {summary['latent_bits']}-bit max-entropy latent bins. Machine: {summary['machine']}.",
        f"-ELBO = {neg_elbo_bits:.2f} bits/image ({summary['neg_elbo_bits_per_dim']:.4f} bits/dim); BB-ANS net stack "
        f"growth {net:.2f} bits/image (ratio {summary['net_over_neg_elbo']:.4f}); whole file {bb:.4f} bits/dim.",
        "",
        "| codec | layout | bits/dim | vs BB-ANS | encode img/s | decode img/s |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in sorted(results.items(), key=lambda kv: kv[1]["bits_per_dim"]):
        lines.append(f"| {name} | {r['layout']} | {r['bits_per_dim']:.4f} | {r['bits_per_dim'] / bb:.2f}x | "
                     f"{r['encode_img_s']:.0f} | {r['decode_img_s']:.0f} |")  # fmt: skip
    if "repeats" in bbr:  # (the 8-bit run predates the CPU-time speed measurement)
        lines += [
        "",
        f"BB-ANS speed, one thread, median of {bbr['repeats']} runs over the {n} images: encode "
        f"{bbr['encode_img_s']:.0f} img/s wall-clock ({bbr['encode_img_s_cpu']:.0f} by CPU time), decode "
        f"{bbr['decode_img_s']:.0f} img/s wall-clock ({bbr['decode_img_s_cpu']:.0f} by CPU time); the load average "
        "is in the line above.",
        ]
    if summary.get("portable"):
        lines += ["", "Same file bytes and decoded array in fresh processes:",
                  *(f"- {name}: {'identical' if ok else 'DIFFERENT'}" for name, ok in summary["portable"].items())]  # fmt: skip
    goal = summary["goal_bits_per_dim"]
    if goal is not None:
        verdict = "met" if bb <= goal else "NOT met"
        slowest = min(bbr["encode_img_s_cpu"], bbr["decode_img_s_cpu"])
        lines += ["", f"Goal ≤ {goal} bits/dim: {verdict} ({bb:.4f}). "
                  f"Goal ≥ {SPEED_GOAL} img/s each way on one thread: {'met' if slowest >= SPEED_GOAL else 'NOT met'} "
                  f"by CPU time ({slowest:.0f}); wall-clock {min(bbr['encode_img_s'], bbr['decode_img_s']):.0f}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="bits-back model dir or a varinf VAE run (default: shipped)")
    parser.add_argument("--eight-bit", action="store_true", help="8-bit MNIST (discretized-logistic VAE)")
    parser.add_argument("--limit", type=int, default=10_000)
    parser.add_argument("--mnist", default=str(MNIST))
    parser.add_argument("--repeats", type=int, default=3, help="timed encode/decode runs (median reported)")
    parser.add_argument("--no-portability", action="store_true", help="skip the cross-kernel decode check")
    parser.add_argument("--report", action="store_true", help="rewrite the markdown from the JSON; run nothing")
    args = parser.parse_args()
    stem = RESULTS / ("bitsback_mnist_8bit" if args.eight_bit else "bitsback_mnist")
    if args.report:
        print(_results.report(stem, markdown))
        return
    torch.set_num_threads(1)
    meta = _results.provenance(__file__, limit=args.limit, repeats=args.repeats)

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

    coded, te, te_cpu = timed_repeats(lambda: compress_lossless(symbols[:, 0], codec), args.repeats)
    back, td, td_cpu = timed_repeats(lambda: decompress_lossless(coded.data, codec), args.repeats)
    assert np.array_equal(back, symbols[:, 0]), "bits-back round trip failed"
    portable = {} if args.no_portability else portability(symbols[:, 0], coded.data, args.model)
    net_per_image = coded.net_bits / n
    speed = {"encode_img_s_cpu": n / te_cpu, "decode_img_s_cpu": n / td_cpu, "repeats": args.repeats}
    results = {
        "BB-ANS (varinf)": {
            "bytes": len(coded.data),
            "layout": "one .vif file",
            "encode_img_s": n / te,
            "decode_img_s": n / td,
            **speed,
        },
        **stream_codecs(symbols[:, 0], binary=not args.eight_bit),
        **image_codecs(symbols[:, 0], binary=not args.eight_bit),
    }
    for r in results.values():
        r["bits_per_dim"] = 8 * r["bytes"] / (n * dims)
    bb = results["BB-ANS (varinf)"]["bits_per_dim"]
    summary = {
        "meta": _results.finish(meta),
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
        "portable": portable,
        "machine": f"{platform.machine()}, torch {torch.__version__}, 1 thread",
        "codecs": results,
    }
    print(_results.save(stem, summary, markdown))


if __name__ == "__main__":
    main()
