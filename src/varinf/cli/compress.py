"""``varinf compress`` / ``varinf decompress`` (learned lossy image codec, ``.vif`` files) and ``varinf codec``::

varinf compress IMAGE.png -o IMAGE.vif [--quality Q] [--model DIR] [--force]
varinf compress --lossless DIGITS.npy|DIGIT.png -o DIGITS.vif [--model DIR] [--force]   (bits-back, VAE)
varinf decompress FILE.vif -o OUT.png|OUT.npy [--model DIR] [--force]   (lossy or lossless, from the file)
varinf codec train -o DIR [--images FOLDER] [--steps N] ...             (resumes from DIR's checkpoint)
varinf codec eval --images FOLDER [--model DIR] [--qualities ...] [--baselines] [-o points.json]

Coding is deterministic (the same input gives the same file on every run), so these commands have no
``--seed``; ``codec train`` has one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .options import add_output, add_reporting, add_seed, emit, integer, number, progress_of
from .paths import check_output_folder, check_outputs, input_file, input_folder, model_inputs, writing

__all__ = ["register"]


# formats that store decoded pixels exactly; anything else (.jpg, .webp, .avif, .gif, ...) re-encodes them lossily
LOSSLESS_IMAGES = (".png", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".pnm", ".qoi")


def _progress(args: argparse.Namespace, what: str):
    from ..utils.progress_bars import progress

    return progress(f"{args.prog}: {what}", unit="images", enabled=progress_of(args))


def _shipped_levels() -> int:
    """Quality levels of the shipped codec, read from its model.json (the parser needs it for --help)."""
    from importlib.resources import files

    try:
        config = json.loads((files("varinf") / "assets" / "codec" / "model.json").read_text(encoding="utf-8"))
        return len(config["config"]["lambdas"])
    except (OSError, KeyError, TypeError, ValueError):
        return 6


def _image_extension(path: Path, allow_npy: bool, force: bool) -> None:
    """Refuse an output name whose format is unknown, or lossy without ``--force``, before any decoding."""
    from PIL import Image

    suffix = path.suffix.lower()
    if (allow_npy and suffix == ".npy") or suffix in LOSSLESS_IMAGES:
        return
    if suffix == ".npy":
        raise ValueError(f"{path}: a lossy .vif decodes to an image; use .png (.npy is for lossless files)")
    if suffix not in Image.registered_extensions():
        raise ValueError(
            f"{path}: unknown output extension {suffix or '(none)'!r} (use .png{' or .npy' if allow_npy else ''})"
        )
    if not force:
        raise ValueError(f"{path}: {suffix} is a lossy format: saving would re-encode the decoded pixels and lose "
                         "detail again; write .png (exact), or pass --force to re-encode anyway")  # fmt: skip


def run_compress(args: argparse.Namespace) -> int:
    src = input_file(args.input)
    (dst,) = check_outputs([args.output], inputs=[src, *model_inputs(args.model)], force=args.force)
    if args.lossless:
        from ..compression import compress_lossless_file

        if args.quality is not None:
            raise ValueError("--quality applies to lossy compression; lossless files have none")
        with _progress(args, "bits-back coding") as bar:
            result = compress_lossless_file(src, dst, model=args.model, force=args.force, progress=bar)
        estimate = result.image_bits.mean() / result.num_dims
        text = (f"{dst}: {len(result.data)} bytes, {result.num_images} image(s), {result.bits_per_dim:.4f} bits/dim "
                f"(model estimate {estimate:.4f} bits/dim without the first-image overhead)")  # fmt: skip
        record = {"output": str(dst), "kind": "lossless", "bytes": len(result.data), "images": result.num_images,
                  "bits_per_dim": result.bits_per_dim, "estimated_bits_per_dim": estimate}  # fmt: skip
    else:
        from ..compression import compress_file

        result = compress_file(src, dst, quality=args.quality, model=args.model, force=args.force)
        estimate = result.estimated_bits / (result.height * result.width)
        text = (f"{dst}: {len(result.data)} bytes, {result.bpp:.4f} bpp ({result.width}x{result.height} pixels, "
                f"quality {result.quality:g}; model estimate {estimate:.4f} bpp for the payload)")  # fmt: skip
        record = {"output": str(dst), "kind": "lossy", "bytes": len(result.data), "bpp": result.bpp,
                  "width": result.width, "height": result.height, "quality": result.quality,
                  "estimated_payload_bpp": estimate}  # fmt: skip
    emit(args, text, record)
    return 0


def run_decompress(args: argparse.Namespace) -> int:
    from ..compression import KIND_LOSSLESS, decompress_file, decompress_lossless_file, file_kind

    src = input_file(args.input)
    (dst,) = check_outputs([args.output], inputs=[src, *model_inputs(args.model)], force=args.force)
    lossless = file_kind(src) == KIND_LOSSLESS
    _image_extension(dst, allow_npy=lossless, force=args.force)
    if lossless:
        with _progress(args, "bits-back decoding") as bar:
            array = decompress_lossless_file(src, dst, model=args.model, force=args.force, progress=bar)
        text = f"{dst}: array {tuple(array.shape)} {array.dtype}"
        record = {"output": str(dst), "kind": "lossless", "shape": list(array.shape), "dtype": str(array.dtype)}
    else:
        pixels = decompress_file(src, dst, model=args.model, force=args.force)
        text = f"{dst}: {pixels.shape[1]}x{pixels.shape[0]} pixels (width x height)"
        record = {"output": str(dst), "kind": "lossy", "width": pixels.shape[1], "height": pixels.shape[0]}
    emit(args, text, record)
    return 0


_CODEC_FILES = ("model.safetensors", "model.json", "train.log")


def _check_train_folder(args: argparse.Namespace) -> Path:
    """A codec training folder: new, empty, one to resume (it holds a checkpoint), or replaced with --force."""
    out = Path(args.output)
    if args.images is not None and out.exists() and os.path.samefile(out, args.images):
        raise ValueError(f"{out}: is the --images folder; write the codec to another folder")
    resuming = out.is_dir() and any(p.name.startswith("checkpoint") for p in out.iterdir())
    # a finished run or someone's files are replaced only with --force; an unfinished run is continued
    check_output_folder(out, [] if resuming else _CODEC_FILES, inputs=[], force=args.force)
    return out


def run_train(args: argparse.Namespace) -> int:
    from ..compression import CodecConfig, TrainConfig, builtin_images, folder_images, train_codec
    from ..compression.lossy.model import DEFAULT_LAMBDAS

    out = _check_train_folder(args)
    files = None
    if args.images:
        images = folder_images(input_folder(args.images))
    elif args.photos:
        from ..compression.lossy.photos import packaged_photos

        photos = packaged_photos()
        for source, command in photos.missing.items():
            print(f"photo source {source} not installed ({command}); training without it", file=sys.stderr)
        images, files = photos.images, photos.manifest()
    else:
        images = builtin_images()
    lambdas = tuple(args.lambdas) if args.lambdas else None
    init = _initial_codec(args.init, args.prior, lambdas) if args.init else None
    config = init.config if init is not None else CodecConfig(
        prior=args.prior, channels=args.channels, latent_channels=args.latent_channels,
        hyper_channels=args.hyper_channels, lambdas=lambdas or DEFAULT_LAMBDAS, name=args.name)  # fmt: skip
    train = TrainConfig(steps=args.steps, batch_size=args.batch_size, patch_size=args.patch_size, lr=args.lr,
                        seed=args.seed, threads=args.threads, decay_fraction=args.decay_fraction,
                        late_patch_size=args.late_patch_size, warmup_steps=args.warmup_steps,
                        time_budget_h=args.hours, keep_every=args.keep_every,
                        entropy_only=args.entropy_only)  # fmt: skip
    result = train_codec(config, images, out, train, progress=progress_of(args), init=init, training_files=files)
    text = (f"trained {result.steps} steps in {result.wall_time:.0f} s; last patches: {result.bpp:.3f} bpp, "
            f"{result.psnr:.2f} dB; model written to {result.model_dir}")  # fmt: skip
    record = {"steps": result.steps, "wall_time_s": result.wall_time, "bpp": result.bpp, "psnr": result.psnr,
              "model_dir": str(result.model_dir)}  # fmt: skip
    emit(args, text, record)
    return 0


def _initial_codec(directory: str, prior: str, lambdas: tuple[float, ...] | None):
    """The saved codec in ``directory``; a scale hyperprior becomes an equivalent mean-scale model when
    ``prior`` is ``mean-scale``, a mean-scale one an equivalent checkerboard model (with ``lambdas``' quality
    levels) when ``prior`` is ``checkerboard``."""
    from ..compression import load_codec
    from ..compression.lossy.warm_starts import checkerboard_from_mean_scale, mean_scale_from_hyperprior

    codec = load_codec(input_folder(directory))
    if prior == "mean-scale" and codec.config.prior == "hyperprior":
        codec = mean_scale_from_hyperprior(codec)
    elif prior == "checkerboard" and codec.config.prior == "mean-scale":
        return checkerboard_from_mean_scale(codec, lambdas)
    if prior != codec.config.prior:
        raise ValueError(f"--init {directory} is a {codec.config.prior} codec, not {prior}")
    if lambdas is not None and tuple(lambdas) != codec.config.lambdas:
        raise ValueError(f"--lambdas: --init {directory} has its own quality levels {list(codec.config.lambdas)}")
    return codec


def run_export(args: argparse.Namespace) -> int:
    from ..compression.lossy.pretrained import CONFIG, WEIGHTS
    from ..compression.lossy.train import export_checkpoint

    run = input_folder(args.run)
    check_output_folder(args.output, [WEIGHTS, CONFIG], inputs=list(run.iterdir()), force=args.force)
    info = {"note": args.note} if args.note else None
    half = args.weights == "float16"
    codec = export_checkpoint(run, args.output, half=half, info=info)
    text = f"{args.output}: {codec.config.prior} codec {codec.model_id().hex()} ({args.weights} weights)"
    emit(args, text, {"output": str(args.output), "prior": codec.config.prior, "model_id": codec.model_id().hex(),
                      "weights": args.weights})  # fmt: skip
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from ..compression import folder_images, load_codec, rd_report

    images_dir = input_folder(args.images)
    outputs = []
    if args.output is not None:
        outputs = check_outputs([args.output], inputs=model_inputs(args.model), force=args.force)
    codec = load_codec(args.model)
    qualities = args.qualities or [q * codec.max_quality / 5 for q in range(6)]
    report = rd_report(codec, folder_images(images_dir), qualities, baselines=args.baselines,
                       progress=progress_of(args))  # fmt: skip
    if outputs:
        with writing(outputs, force=args.force) as (tmp,):
            tmp.write_text(report.to_json() + "\n", encoding="utf-8")
    emit(args, report.to_markdown, lambda: json.loads(report.to_json()))
    return 0


def register(sub) -> None:
    p = sub.add_parser("compress", help="compress an image (learned lossy codec) or images (--lossless) to .vif")
    p.add_argument("input", help="image file (PNG, JPEG, ...); with --lossless also a .npy array of images")
    p.add_argument("--lossless", action="store_true",
                   help="bits-back coding with a VAE (default model: binarized MNIST, 28x28, values 0/1 or 0/255)")  # fmt: skip
    add_output(p, "output .vif file", required=True)
    top = _shipped_levels() - 1
    p.add_argument("-q", "--quality", type=number(0), default=None,
                   help=f"quality level in [0, {top}] for the shipped codec ([0, levels-1] for a --model with another "
                        "number of levels); fractional values interpolate (default: the level whose lambda is nearest "
                        "0.013)")  # fmt: skip
    p.add_argument("--model", default=None, help="model directory (default: the shipped model of that kind)")
    add_reporting(p)
    p.set_defaults(func=run_compress)

    p = sub.add_parser("decompress", help="decode a .vif file (lossy or lossless) to an image or .npy array")
    p.add_argument("input", help=".vif file")
    add_output(p, "output image: .png (or another exact format: .bmp, .tif, .ppm); a lossy one (.jpg, .webp) only "
                  "with --force, which re-encodes; .npy for lossless files", required=True)  # fmt: skip
    p.add_argument("--model", default=None, help="model directory (default: the shipped model of that kind)")
    add_reporting(p)
    p.set_defaults(func=run_decompress)

    p = sub.add_parser("codec", help="train or evaluate the learned image codec")
    csub = p.add_subparsers(dest="codec_command", metavar="ACTION", required=True)
    from ..compression.lossy.model import CodecConfig
    from ..compression.lossy.train import TrainConfig

    cdef, tdef = CodecConfig(), TrainConfig()  # the defaults are the configs' own (threads: one, for the CLI)
    t = csub.add_parser("train", help="train a codec on random patches (resumes from the output folder's checkpoint)")
    add_output(t, "output folder (checkpoint, log, model); an unfinished run there is resumed", required=True)
    t.add_argument("--images", default=None, help="folder of training images (default: bundled sample pictures)")
    t.add_argument("--photos", action="store_true",
                   help="bundled pictures plus the registry photo sets of varinf.compression.lossy.photos")  # fmt: skip
    t.add_argument("--prior", default=cdef.prior, choices=["hyperprior", "mean-scale", "checkerboard", "factorized"],
                   help=f"entropy model of the latents (default {cdef.prior})")  # fmt: skip
    t.add_argument("--init", default=None,
                   help="start a new run from this saved codec (its architecture; a scale hyperprior is "
                        "turned into an equivalent mean-scale model with --prior mean-scale, a mean-scale one "
                        "into an equivalent checkerboard model with --prior checkerboard)")  # fmt: skip
    t.add_argument(
        "--channels", type=integer(1), default=cdef.channels, help=f"N, hidden channels (default {cdef.channels})"
    )
    t.add_argument("--latent-channels", type=integer(1), default=cdef.latent_channels,
                   help=f"M, latent channels (default {cdef.latent_channels})")  # fmt: skip
    t.add_argument("--hyper-channels", type=integer(1), default=cdef.hyper_channels,
                   help=f"hyperprior channels (default {cdef.hyper_channels})")  # fmt: skip
    t.add_argument("--lambdas", type=number(0, lo_open=True), nargs="+", default=None,
                   help=f"one rate-distortion trade-off per quality level (default {' '.join(f'{x:g}' for x in cdef.lambdas)}; "
                        "with --init --prior checkerboard: new levels start from extrapolated gains)")  # fmt: skip
    t.add_argument("--name", default=cdef.name, help=f"name recorded in model.json (default {cdef.name})")
    t.add_argument("--steps", type=integer(1), default=tdef.steps, help=f"Adam steps in total (default {tdef.steps})")
    t.add_argument("--batch-size", type=integer(1), default=tdef.batch_size,
                   help=f"patches per step (default {tdef.batch_size})")  # fmt: skip
    t.add_argument("--patch-size", type=integer(16), default=tdef.patch_size,
                   help=f"side of the square patches, pixels (default {tdef.patch_size})")  # fmt: skip
    t.add_argument("--lr", type=number(0, lo_open=True), default=tdef.lr, help=f"Adam step size (default {tdef.lr:g})")
    t.add_argument("--late-patch-size", type=integer(16), default=None,
                   help="patch size during the lr decay (batch cut to keep the pixels per step)")  # fmt: skip
    t.add_argument("--hours", type=number(0, lo_open=True), default=None,
                   help="training-time budget: the total steps (at most --steps) are re-planned from the measured "
                        "pace until the lr decay starts, so that the run ends within it")  # fmt: skip
    t.add_argument("--warmup-steps", type=integer(0), default=tdef.warmup_steps, help="linear lr warm-up steps")
    t.add_argument("--decay-fraction", type=number(0, 1, hi_open=True), default=tdef.decay_fraction,
                   help="final share of steps with a cosine lr decay")  # fmt: skip
    t.add_argument("--threads", type=integer(1), default=1, help="torch CPU threads (default 1)")
    t.add_argument(
        "--entropy-only",
        action="store_true",
        help="train the entropy model alone (rate loss; transforms and gains frozen, ~4x cheaper steps)",
    )
    t.add_argument("--keep-every", type=integer(1), default=None,
                   help="also keep the weights every this many steps (snapshots/step-N, float16) for selection")  # fmt: skip
    add_seed(t)
    add_reporting(t)
    t.set_defaults(func=run_train)

    x = csub.add_parser("export", help="write the codec of a training run's latest checkpoint (float16 by default)")
    x.add_argument("run", help="training output folder (holds the checkpoint)")
    add_output(x, "model folder to write (e.g. src/varinf/assets/codec)", required=True)
    x.add_argument("--weights", choices=["float16", "float32"], default="float16",
                   help="precision of the stored weights (default: float16, as shipped)")  # fmt: skip
    x.add_argument("--note", default=None, help="text recorded under info.note in model.json")
    add_reporting(x)
    x.set_defaults(func=run_export)

    e = csub.add_parser("eval", help="rate-distortion points of a codec (and optionally JPEG/WebP/AVIF)")
    e.add_argument("--images", required=True, help="folder of evaluation images (e.g. Kodak)")
    e.add_argument("--model", default=None, help="codec directory (default: the shipped pretrained codec)")
    e.add_argument("--qualities", type=number(0), nargs="+", default=None,
                   help="quality levels to measure (default: 6 evenly spaced from 0 to the codec's highest)")  # fmt: skip
    e.add_argument("--baselines", action="store_true", help="also run Pillow's JPEG, WebP and AVIF")
    add_output(e, "write the points (JSON) to this file")
    add_reporting(e)
    e.set_defaults(func=run_eval)
