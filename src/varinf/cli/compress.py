"""``varinf compress`` / ``varinf decompress`` (learned lossy image codec, ``.vif`` files) and ``varinf codec``::

varinf compress IMAGE.png -o IMAGE.vif [--quality Q] [--model DIR] [--force]
varinf compress --lossless DIGITS.npy|DIGIT.png -o DIGITS.vif [--model DIR] [--force]   (bits-back, VAE)
varinf decompress FILE.vif -o OUT.png|OUT.npy [--model DIR] [--force]   (lossy or lossless, from the file)
varinf codec train --out DIR [--images FOLDER] [--steps N] ...
varinf codec eval --images FOLDER [--model DIR] [--qualities ...] [--baselines]
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def _guard(func):
    """Turn refusals to overwrite (FileExistsError, an OSError) into the CLI's one-line errors."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except FileExistsError as e:
            print(f"varinf {args.command}: error: {e}", file=sys.stderr)
            return 1

    return run


def _progress(args: argparse.Namespace, total: int | None = None):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not sys.stderr.isatty(), desc=args.command, unit="img")


def run_compress(args: argparse.Namespace) -> int:
    if args.lossless:
        from ..compression import compress_lossless_file

        with _progress(args) as bar:
            result = compress_lossless_file(args.input, args.output, model=args.model, force=args.force, progress=bar)
        print(f"{args.output}: {len(result.data)} bytes, {result.num_images} image(s), "
              f"{result.bits_per_dim:.4f} bits/dim (model estimate "
              f"{result.image_bits.mean() / result.num_dims:.4f} bits/dim without the first-image overhead)")  # fmt: skip
        return 0
    from ..compression import compress_file

    result = compress_file(args.input, args.output, quality=args.quality, model=args.model, force=args.force)
    print(f"{args.output}: {len(result.data)} bytes, {result.bpp:.4f} bpp "
          f"({result.height}x{result.width}, quality {result.quality:g}; model estimate "
          f"{result.estimated_bits / (result.height * result.width):.4f} bpp for the payload)")  # fmt: skip
    return 0


def run_decompress(args: argparse.Namespace) -> int:
    from ..compression import KIND_LOSSLESS, decompress_file, decompress_lossless_file, file_kind

    if file_kind(args.input) == KIND_LOSSLESS:
        with _progress(args) as bar:
            array = decompress_lossless_file(args.input, args.output, model=args.model, force=args.force, progress=bar)
        print(f"{args.output}: array {tuple(array.shape)} {array.dtype}")
        return 0
    pixels = decompress_file(args.input, args.output, model=args.model, force=args.force)
    print(f"{args.output}: {pixels.shape[0]}x{pixels.shape[1]} pixels")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from ..compression import CodecConfig, TrainConfig, builtin_images, folder_images, train_codec

    if args.images:
        images = folder_images(args.images)
    elif args.photos:
        from ..compression.photos import packaged_photos

        photos = packaged_photos()
        for source, command in photos.missing.items():
            print(f"photo source {source} not installed ({command}); training without it", file=sys.stderr)
        images = photos.images
    else:
        images = builtin_images()
    init = _initial_codec(args.init, args.prior) if args.init else None
    config = init.config if init is not None else CodecConfig(
        prior=args.prior, channels=args.channels, latent_channels=args.latent_channels,
        hyper_channels=args.hyper_channels, lambdas=tuple(args.lambdas), name=args.name)  # fmt: skip
    train = TrainConfig(steps=args.steps, batch_size=args.batch_size, patch_size=args.patch_size, lr=args.lr,
                        seed=args.seed, threads=args.threads, decay_fraction=args.decay_fraction,
                        late_patch_size=args.late_patch_size, warmup_steps=args.warmup_steps,
                        time_budget_h=args.hours)  # fmt: skip
    result = train_codec(config, images, args.out, train, progress=False if args.no_progress else None, init=init)
    print(f"trained {result.steps} steps in {result.wall_time:.0f} s; last patches: {result.bpp:.3f} bpp, "
          f"{result.psnr:.2f} dB; model written to {result.model_dir}")  # fmt: skip
    return 0


def _initial_codec(directory: str, prior: str):
    """The saved codec in ``directory``; a scale hyperprior becomes an equivalent mean-scale model when
    ``prior`` is ``mean-scale``."""
    from ..compression import load_codec
    from ..compression.mean_scale import mean_scale_from_hyperprior

    codec = load_codec(directory)
    if prior == "mean-scale" and codec.config.prior == "hyperprior":
        return mean_scale_from_hyperprior(codec)
    if prior != codec.config.prior:
        raise ValueError(f"--init {directory} is a {codec.config.prior} codec, not {prior}")
    return codec


def run_export(args: argparse.Namespace) -> int:
    from ..compression.train import export_checkpoint

    info = {"note": args.note} if args.note else None
    codec = export_checkpoint(args.run, args.out, half=not args.float32, info=info)
    print(
        f"{args.out}: {codec.config.prior} codec {codec.model_id().hex()} ({'float32' if args.float32 else 'float16'})"
    )
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from ..compression import folder_images, load_codec, rd_report

    codec = load_codec(args.model)
    qualities = args.qualities or [q * codec.max_quality / 5 for q in range(6)]
    report = rd_report(codec, folder_images(args.images), qualities, baselines=args.baselines,
                       progress=False if args.no_progress else None)  # fmt: skip
    print(report.to_markdown())
    if args.json:
        from ..compression.image_file import write_atomic

        write_atomic(args.json, report.to_json().encode(), force=True)
    return 0


def register(sub) -> None:
    p = sub.add_parser("compress", help="compress an image (learned lossy codec) or images (--lossless) to .vif")
    p.add_argument("input", help="image file (PNG, JPEG, ...); with --lossless also a .npy array of images")
    p.add_argument("--lossless", action="store_true",
                   help="bits-back coding with a VAE (default model: binarized MNIST, 28x28, values 0/1 or 0/255)")  # fmt: skip
    p.add_argument("-o", "--output", required=True, help="output .vif file")
    p.add_argument("-q", "--quality", type=float, default=None,
                   help="quality level in [0, levels-1], fractional values interpolate (default: 3)")  # fmt: skip
    p.add_argument("--model", default=None, help="model directory (default: the shipped model of that kind)")
    p.add_argument("--force", action="store_true", help="overwrite the output file")
    p.set_defaults(func=_guard(run_compress))

    p = sub.add_parser("decompress", help="decode a .vif file (lossy or lossless) to an image or .npy array")
    p.add_argument("input", help=".vif file")
    p.add_argument("-o", "--output", required=True, help="output image (.png recommended) or .npy (lossless)")
    p.add_argument("--model", default=None, help="model directory (default: the shipped model of that kind)")
    p.add_argument("--force", action="store_true", help="overwrite the output file")
    p.set_defaults(func=_guard(run_decompress))

    p = sub.add_parser("codec", help="train or evaluate the learned image codec")
    csub = p.add_subparsers(dest="codec_command", metavar="ACTION", required=True)
    t = csub.add_parser("train", help="train a codec on random patches (resumes from DIR/checkpoint.safetensors)")
    t.add_argument("--out", required=True, help="output folder (checkpoint, log, model)")
    t.add_argument("--images", default=None, help="folder of training images (default: bundled sample pictures)")
    t.add_argument("--photos", action="store_true",
                   help="bundled pictures plus the registry photo sets of varinf.compression.photos")  # fmt: skip
    t.add_argument("--prior", default="hyperprior", choices=["hyperprior", "mean-scale", "factorized"])
    t.add_argument("--init", default=None,
                   help="start a new run from this saved codec (its architecture; a scale hyperprior is "
                        "turned into an equivalent mean-scale model with --prior mean-scale)")  # fmt: skip
    t.add_argument("--channels", type=int, default=64, help="N, hidden channels")
    t.add_argument("--latent-channels", type=int, default=128, help="M, latent channels")
    t.add_argument("--hyper-channels", type=int, default=64)
    t.add_argument("--lambdas", type=float, nargs="+", default=[0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483],
                   help="one rate-distortion trade-off per quality level")  # fmt: skip
    t.add_argument("--name", default="varinf-codec")
    t.add_argument("--steps", type=int, default=20_000)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--patch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--late-patch-size", type=int, default=None,
                   help="patch size during the lr decay (batch cut to keep the pixels per step)")  # fmt: skip
    t.add_argument("--hours", type=float, default=None,
                   help="training-time budget: the total steps (at most --steps) are re-planned from the measured "
                        "pace until the lr decay starts, so that the run ends within it")  # fmt: skip
    t.add_argument("--warmup-steps", type=int, default=0, help="linear lr warm-up steps")
    t.add_argument("--decay-fraction", type=float, default=0.25, help="final share of steps with a cosine lr decay")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=run_train)
    x = csub.add_parser("export", help="write the codec of a training run's latest checkpoint (float16 by default)")
    x.add_argument("run", help="training output folder (holds checkpoint.safetensors)")
    x.add_argument("--out", required=True, help="model folder to write (e.g. src/varinf/assets/codec)")
    x.add_argument("--float32", action="store_true", help="keep float32 weights")
    x.add_argument("--note", default=None, help="text recorded under info.note in model.json")
    x.set_defaults(func=run_export)
    e = csub.add_parser("eval", help="rate-distortion points of a codec (and optionally JPEG/WebP/AVIF)")
    e.add_argument("--images", required=True, help="folder of evaluation images (e.g. Kodak)")
    e.add_argument("--model", default=None, help="codec directory (default: the shipped pretrained codec)")
    e.add_argument("--qualities", type=float, nargs="+", default=None)
    e.add_argument("--baselines", action="store_true", help="also run Pillow's JPEG, WebP and AVIF")
    e.add_argument("--json", default=None, help="write the points to this JSON file")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=run_eval)
