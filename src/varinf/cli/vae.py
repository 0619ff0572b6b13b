"""``varinf vae train|eval|plot``: train VAEs, measure honest likelihoods, draw pictures.

Examples::

    varinf vae train -o runs/iwae --data ../shared/data/mnist --preset iwae1 --objective iwae --k 50 --gradient dreg
    varinf vae train -o runs/iwae --resume --epochs 200       # continue exactly where it stopped
    torchrun --nproc_per_node=2 -m varinf vae train -o runs/ddp --data ../shared/data/mnist --epochs 5
    varinf vae eval runs/iwae --k 5000                        # test NLL, rate, distortion (nats, bits/dim)
    varinf vae plot runs/iwae                                 # samples/reconstructions/latent map PNGs
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path

from ..objectives import GRADIENTS
from ..vae.likelihoods import LIKELIHOODS
from ..vae.networks import ACTIVATIONS
from ..vae.schedule import SCHEDULES
from ..vae.train_config import TrainConfig
from .options import add_output, add_reporting, add_seed, emit, integer, number, progress_of
from .paths import check_output_folder, input_folder

__all__ = ["register"]

_T = TrainConfig()  # the defaults of ``varinf vae train`` are the training config's own

PLOTS = ("samples.png", "reconstructions.png", "latent_map.png", "history.png")


def _seconds(s: str) -> float:
    """An argparse ``type``: a duration (900, 15m, 3h) in seconds, > 0."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        value = float(s[:-1]) * units[s[-1]] if s and s[-1] in units else float(s)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"cannot read a duration > 0 from {s!r} (use e.g. 900, 15m, 3h)")
    return value


def _ints(s: str) -> tuple[int, ...]:
    """An argparse ``type``: positive integers separated by commas, e.g. 50 or 100,50."""
    try:
        sizes = tuple(int(v) for v in s.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers like 50 or 100,50, got {s!r}")
    return sizes


def _sizes(s: str) -> tuple[int, ...]:
    """An argparse ``type``: layer sizes "200,200", or per stochastic layer "200,200;100,100" (tuples of them)."""
    try:
        groups = [tuple(int(v) for v in g.split(",") if v.strip()) for g in s.split(";")]
    except ValueError:
        groups = []
    if not groups or any(not g or min(g) < 1 for g in groups):
        raise argparse.ArgumentTypeError(f"expected positive integers like 50, 200,200 or 200,200;100,100, got {s!r}")
    return groups[0] if len(groups) == 1 and ";" not in s else tuple(groups)


def _data_spec(args):
    from ..vae.datasets import DataSpec

    if args.data is None:
        return None
    return DataSpec(
        path=str(input_folder(args.data)),
        kind=getattr(args, "kind", "auto"),
        limit=getattr(args, "limit_train", None),
        download=getattr(args, "download", False),
        image_size=getattr(args, "image_size", None),
        mode=getattr(args, "mode", "L"),
    )


def _with_threads(run):
    """Run a subcommand with ``--threads`` torch threads (default: torch's choice)."""

    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        from ..utils import num_threads

        with num_threads(args.threads or None):
            return run(args)

    return wrapper


def _check_run_folder(args: argparse.Namespace) -> Path:
    """A fresh run goes to a new or empty folder (any other only with --force); never into the data folder."""
    run = Path(args.output)
    if args.data is not None and run.exists() and Path(args.data).exists() and os.path.samefile(run, args.data):
        raise ValueError(f"{run}: is the --data folder; train into another folder")
    check_output_folder(run, [], inputs=[], force=args.force)
    first_rank = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 creates the folder for all
    if not args.resume and first_rank and not args.force and run.is_dir() and any(run.iterdir()):
        hint = "resume it (--resume), " if (run / "config.json").exists() else ""
        raise FileExistsError(f"{run} exists and is not empty; {hint}choose a new folder, or pass --force")
    return run


@_with_threads
def run_train(args: argparse.Namespace) -> int:
    from ..vae import VAEConfig
    from ..vae.runs import train_run

    run = _check_run_folder(args)
    progress = progress_of(args)
    stops = {"epochs": args.epochs, "max_steps": args.max_steps, "cpu_budget_s": args.cpu_budget}
    if args.resume:
        result = train_run(run, data=_data_spec(args), resume=True, stops=stops, progress=progress)
    else:
        data = _data_spec(args)
        if data is None:
            raise ValueError("pass --data PATH (an MNIST idx folder or an image folder)")
        model = {}
        if args.likelihood:
            model["likelihood"] = args.likelihood
        if args.latents:
            model["latents"] = args.latents
        if args.hidden:
            model["hidden"] = args.hidden if isinstance(args.hidden[0], tuple) else (args.hidden,)
        if args.prior:
            model["prior"] = args.prior
        if args.activation:
            model["activation"] = args.activation
        shape = tuple(data.load().train.images.shape[1:])
        vae_config = VAEConfig.preset(args.preset, data_shape=shape, **model)
        no_stop = args.epochs is None and args.max_steps is None and args.cpu_budget is None
        config = TrainConfig(
            objective=args.objective,
            k=args.k,
            gradient=args.gradient,
            beta=args.beta,
            kl_warmup_steps=args.kl_warmup,
            free_bits=args.free_bits,
            batch_size=args.batch_size,
            lr=args.lr,
            lr_schedule=args.schedule,
            epochs=_T.epochs if no_stop else args.epochs,
            max_steps=args.max_steps,
            cpu_budget_s=args.cpu_budget,
            seed=args.seed,
            valid_every=args.valid_every,
            valid_k=args.valid_k,
            valid_size=args.valid_size,
            checkpoint_every_s=args.checkpoint_every,
        )
        result = train_run(run, vae_config, config, data, force=args.force, progress=progress)
    if result.rank == 0:
        text = f"{result.run_dir}: {result.epochs} epochs, {result.steps} steps, {result.cpu_s:.0f} s CPU ({result.stopped})"
        record = {"run": str(result.run_dir), "epochs": result.epochs, "steps": result.steps, "cpu_s": result.cpu_s,
                  "wall_s": result.wall_s, "stopped": result.stopped,
                  "history": [vars(r) if hasattr(r, "__dict__") else r for r in result.history]}  # fmt: skip
        emit(args, text, record)
    return 0


@_with_threads
def run_eval(args: argparse.Namespace) -> int:
    from ..vae.runs import evaluate_run

    ev = evaluate_run(
        input_folder(args.run),
        data=_data_spec(args),
        split=args.split,
        k=args.k,
        limit=args.limit,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=progress_of(args),
    )
    emit(args, ev.summary, ev.to_dict)
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from ..vae.runs import plot_run

    run = input_folder(args.run)
    out = Path(args.output) if args.output is not None else run
    check_output_folder(out, PLOTS, inputs=[], force=args.force)
    paths = plot_run(run, data=_data_spec(args), out=out, seed=args.seed)
    emit(args, "\n".join(map(str, paths)), {"plots": [str(p) for p in paths]})
    return 0


def _common(p: argparse.ArgumentParser, run: bool = True) -> None:
    if run:
        p.add_argument("run", help="run folder (checkpoints, config.json, history.json, pictures)")
    p.add_argument(
        "--data", default=None, help="MNIST idx folder or image folder (default: the one recorded in the run)"
    )
    p.add_argument("--threads", type=integer(1), default=None, help="torch threads (default: torch's choice)")


def register(sub) -> None:
    p = sub.add_parser("vae", help="variational autoencoders: train, evaluate, plot")
    vs = p.add_subparsers(dest="vae_command", metavar="{train,eval,plot}", required=True)

    t = vs.add_parser("train", help="train (or --resume) a VAE; checkpoints go to the run folder")
    add_output(t, "run folder (checkpoints, config.json, history.json, model)", required=True)
    _common(t, run=False)
    t.add_argument("--kind", default="auto", choices=["auto", "mnist", "folder"],
                   help="what --data holds: MNIST idx files or an image folder (default: auto-detect)")  # fmt: skip
    t.add_argument("--download", action="store_true", help="download MNIST into --data if missing (needs internet)")
    t.add_argument("--limit-train", type=integer(1), default=None, help="use only the first N training images")
    t.add_argument("--image-size", type=integer(1), default=None, help="image folders: square crop + resize")
    t.add_argument("--mode", default="L", choices=["L", "RGB"], help="image folders: grey or colour")
    t.add_argument("--preset", default="iwae1", help="iwae1 | iwae2 | conv | logistic")
    t.add_argument("--likelihood", default=None, choices=sorted(LIKELIHOODS),
                   help="decoder distribution p(x|z) (default: the preset's)")  # fmt: skip
    t.add_argument("--latents", type=_ints, default=None, help="latent sizes per stochastic layer, e.g. 50 or 100,50")
    t.add_argument("--hidden", type=_sizes, default=None,
                   help="hidden sizes per layer, e.g. '200,200' or '200,200;100,100'")  # fmt: skip
    t.add_argument("--prior", default=None, help="normal | vamp | flow")
    t.add_argument("--activation", default=None, choices=sorted(ACTIVATIONS),
                   help="hidden-layer nonlinearity (default: the preset's)")  # fmt: skip
    t.add_argument("--objective", default=_T.objective, choices=["elbo", "iwae"],
                   help=f"training bound (default {_T.objective})")  # fmt: skip
    t.add_argument("--k", type=integer(1), default=_T.k, help="ELBO particles / IWAE samples")
    t.add_argument("--gradient", default=_T.gradient, choices=GRADIENTS,
                   help=f"gradient estimator (default {_T.gradient}; dreg needs --objective iwae)")  # fmt: skip
    t.add_argument("--beta", type=number(0, lo_open=True), default=_T.beta, help="β-VAE weight on the rate")
    t.add_argument("--kl-warmup", type=integer(0), default=_T.kl_warmup_steps, help="steps of linear KL annealing")
    t.add_argument("--free-bits", type=number(0), default=_T.free_bits, help="minimum nats per latent dimension")
    t.add_argument("--batch-size", type=integer(1), default=_T.batch_size,
                   help=f"images per step (default {_T.batch_size}, as Burda et al.)")  # fmt: skip
    t.add_argument("--lr", type=number(0, lo_open=True), default=_T.lr, help=f"Adam step size (default {_T.lr:g})")
    t.add_argument("--schedule", default=_T.lr_schedule, choices=SCHEDULES,
                   help="learning-rate schedule: burda (lr x 10^(-i/7) after 3^i more epochs), cosine (decay to 1%% "
                        f"over --epochs), constant (default {_T.lr_schedule})")  # fmt: skip
    t.add_argument("--epochs", type=integer(1), default=None, help=f"stop after this many epochs (default {_T.epochs})")
    t.add_argument("--max-steps", type=integer(1), default=None, help="stop after this many steps in total")
    t.add_argument("--cpu-budget", type=_seconds, default=None,
                   help="stop after this much training CPU time (900, 15m, 3h)")  # fmt: skip
    t.add_argument("--valid-every", type=integer(1), default=_T.valid_every, help="epochs between validations")
    t.add_argument("--valid-k", type=integer(1), default=_T.valid_k,
                   help=f"importance samples of the validation NLL bound (default {_T.valid_k})")  # fmt: skip
    t.add_argument("--valid-size", type=integer(1), default=_T.valid_size,
                   help=f"validation images used (default {_T.valid_size})")  # fmt: skip
    t.add_argument("--checkpoint-every", type=number(0, lo_open=True), default=_T.checkpoint_every_s,
                   help="seconds between mid-epoch checkpoints")  # fmt: skip
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in the output folder (only stopping criteria may change)",
    )
    add_seed(t)
    add_reporting(t)
    t.set_defaults(func=run_train)

    e = vs.add_parser(
        "eval", help="test NLL by importance sampling, with rate and distortion (also RUN/eval_SPLIT.json)"
    )
    _common(e)
    e.add_argument(
        "--split", default="test", choices=["train", "valid", "test"], help="images evaluated (default test)"
    )
    e.add_argument("--k", type=integer(1), default=5000, help="importance samples per image")
    e.add_argument("--limit", type=integer(1), default=None, help="evaluate the first N images only")
    e.add_argument("--batch-size", type=integer(1), default=100, help="images per pass (default 100)")
    add_seed(e)
    add_reporting(e)
    e.set_defaults(func=run_eval)

    g = vs.add_parser("plot", help="samples, reconstructions, latent map and history as PNG")
    _common(g)
    add_output(g, "folder for the PNGs (default: the run folder)")
    add_seed(g)
    add_reporting(g)
    g.set_defaults(func=run_plot)
