"""``varinf vae train|eval|plot``: train VAEs, measure honest likelihoods, draw pictures.

Examples::

    varinf vae train runs/iwae --data ../shared/data/mnist --preset iwae1 --objective iwae --k 50 --gradient dreg
    varinf vae train runs/iwae --resume --epochs 200          # continue exactly where it stopped
    torchrun --nproc_per_node=2 -m varinf vae train runs/ddp --data ../shared/data/mnist --epochs 5
    varinf vae eval runs/iwae --k 5000                        # test NLL, rate, distortion (nats, bits/dim)
    varinf vae plot runs/iwae                                 # samples/reconstructions/latent map PNGs
"""

from __future__ import annotations

import argparse
import functools

__all__ = ["register"]


def _seconds(s: str | None) -> float | None:
    if s is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        return float(s[:-1]) * units[s[-1]] if s[-1] in units else float(s)
    except ValueError:
        raise ValueError(f"cannot read a duration from {s!r} (use e.g. 900, 15m, 3h)") from None


def _sizes(s: str) -> tuple[int, ...]:
    return tuple(int(v) for v in s.split(",") if v.strip())


def _data_spec(args):
    from ..vae.datasets import DataSpec

    if args.data is None:
        return None
    return DataSpec(
        path=args.data,
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


@_with_threads
def run_train(args: argparse.Namespace) -> int:
    from ..vae import TrainConfig, VAEConfig
    from ..vae.runs import train_run

    progress = False if args.no_progress else None
    stops = {"epochs": args.epochs, "max_steps": args.max_steps, "cpu_budget_s": _seconds(args.cpu_budget)}
    if args.resume:
        result = train_run(args.run, data=_data_spec(args), resume=True, stops=stops, progress=progress)
    else:
        data = _data_spec(args)
        if data is None:
            raise ValueError("pass --data PATH (an MNIST idx folder or an image folder)")
        model = {}
        if args.likelihood:
            model["likelihood"] = args.likelihood
        if args.latents:
            model["latents"] = _sizes(args.latents)
        if args.hidden:
            model["hidden"] = tuple(_sizes(h) for h in args.hidden.split(";"))
        if args.prior:
            model["prior"] = args.prior
        if args.activation:
            model["activation"] = args.activation
        shape = tuple(data.load().train.images.shape[1:])
        vae_config = VAEConfig.preset(args.preset, data_shape=shape, **model)
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
            epochs=10 if args.epochs is None and args.max_steps is None and args.cpu_budget is None else args.epochs,
            max_steps=args.max_steps,
            cpu_budget_s=stops["cpu_budget_s"],
            seed=args.seed,
            valid_every=args.valid_every,
            valid_k=args.valid_k,
            valid_size=args.valid_size,
            checkpoint_every_s=args.checkpoint_every,
        )
        result = train_run(args.run, vae_config, config, data, force=args.force, progress=progress)
    if result.rank == 0:
        print(
            f"{result.run_dir}: {result.epochs} epochs, {result.steps} steps, {result.cpu_s:.0f} s CPU ({result.stopped})"
        )
    return 0


@_with_threads
def run_eval(args: argparse.Namespace) -> int:
    from ..vae.runs import evaluate_run

    ev = evaluate_run(
        args.run,
        data=_data_spec(args),
        split=args.split,
        k=args.k,
        limit=args.limit,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=False if args.no_progress else None,
    )
    print(ev.summary())
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from ..vae.runs import plot_run

    for path in plot_run(args.run, data=_data_spec(args), out=args.out):
        print(path)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run folder (checkpoints, config.json, history.json, pictures)")
    p.add_argument(
        "--data", default=None, help="MNIST idx folder or image folder (default: the one recorded in the run)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")


def register(sub) -> None:
    p = sub.add_parser("vae", help="variational autoencoders: train, evaluate, plot")
    vs = p.add_subparsers(dest="vae_command", metavar="{train,eval,plot}")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    t = vs.add_parser("train", help="train (or --resume) a VAE; checkpoints go to the run folder")
    _common(t)
    t.add_argument("--kind", default="auto", choices=["auto", "mnist", "folder"])
    t.add_argument("--download", action="store_true", help="download MNIST into --data if missing (needs internet)")
    t.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    t.add_argument("--image-size", type=int, default=None, help="image folders: square crop + resize")
    t.add_argument("--mode", default="L", choices=["L", "RGB"], help="image folders: grey or colour")
    t.add_argument("--preset", default="iwae1", help="iwae1 | iwae2 | conv | logistic")
    t.add_argument("--likelihood", default=None, help="bernoulli | logistic | gaussian")
    t.add_argument("--latents", default=None, help="latent sizes per stochastic layer, e.g. 50 or 100,50")
    t.add_argument("--hidden", default=None, help="hidden sizes per layer, e.g. '200,200' or '200,200;100,100'")
    t.add_argument("--prior", default=None, help="normal | vamp | flow")
    t.add_argument("--activation", default=None, help="tanh | relu | elu | silu")
    t.add_argument("--objective", default="elbo", choices=["elbo", "iwae"])
    t.add_argument("--k", type=int, default=1, help="ELBO particles / IWAE samples")
    t.add_argument("--gradient", default="reparam", help="reparam | stl | dreg | score")
    t.add_argument("--beta", type=float, default=1.0, help="β-VAE weight on the rate")
    t.add_argument("--kl-warmup", type=int, default=0, help="steps of linear KL annealing")
    t.add_argument("--free-bits", type=float, default=0.0, help="minimum nats per latent dimension")
    t.add_argument("--batch-size", type=int, default=20)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--schedule", default="burda", help="burda | cosine | constant")
    t.add_argument("--epochs", type=int, default=None, help="stop after this many epochs (default 10)")
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--cpu-budget", default=None, help="stop after this much training CPU time (900, 15m, 3h)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--valid-every", type=int, default=1, help="epochs between validations")
    t.add_argument("--valid-k", type=int, default=100)
    t.add_argument("--valid-size", type=int, default=1000)
    t.add_argument("--checkpoint-every", type=float, default=600.0, help="seconds between mid-epoch checkpoints")
    t.add_argument("--resume", action="store_true", help="continue the run in RUN (only stopping criteria may change)")
    t.add_argument("--force", action="store_true", help="overwrite an existing run")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=run_train)

    e = vs.add_parser("eval", help="test NLL by importance sampling, with rate and distortion")
    _common(e)
    e.add_argument("--split", default="test", choices=["train", "valid", "test"])
    e.add_argument("--k", type=int, default=5000, help="importance samples per image")
    e.add_argument("--limit", type=int, default=None, help="evaluate the first N images only")
    e.add_argument("--batch-size", type=int, default=100)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=run_eval)

    g = vs.add_parser("plot", help="samples, reconstructions, latent map and history as PNG")
    _common(g)
    g.add_argument("--out", default=None, help="folder for the PNGs (default: the run folder)")
    g.set_defaults(func=run_plot)
