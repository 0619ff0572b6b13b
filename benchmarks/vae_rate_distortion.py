"""Rate-distortion across β (β-VAE) on dynamically binarized MNIST, a 2-D latent map, and pictures.

For each β the IWAE-paper MLP VAE (784-200-200-50 tanh, Bernoulli) is trained with loss = distortion + β·rate
for ``--epochs`` epochs (batch 100, Adam 1e-3 with a cosine schedule); rate, distortion and the k=``--k``
test NLL are measured on the first ``--test`` test images. β < 1 buys distortion with rate, β > 1 the
reverse; β = 1 is the ELBO (Alemi et al. 2018, arXiv:1711.00464). A VAE with 2 latents gives the latent map.
Runs are checkpointed under runs/bench_rd (rerunning skips finished models).

    nice -n 10 python benchmarks/vae_rate_distortion.py [--pictures-from runs/bench_mnist/iwae]

Writes benchmarks/results/vae_rate_distortion.{json,md,png}, vae_latent_map.png and, with
``--pictures-from``, vae_samples.png and vae_reconstructions.png of that run's model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from varinf.data import fixed_binarize, load_mnist
from varinf.utils import atomic_write_text
from varinf.vae import TrainConfig, VAEConfig, evaluate, load_vae, train
from varinf.vae.plots import plot_latent_map, plot_rate_distortion, plot_reconstructions, plot_samples

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def trained(run: Path, vae_config: VAEConfig, config: TrainConfig, mnist):
    if (run / "model.safetensors").is_file() and json.loads((run / "history.json").read_text())[-1][
        "epoch"
    ] >= config.epochs:
        return load_vae(run)
    resume = (run / "checkpoint.safetensors").is_file()
    return train(run, vae_config, config, mnist.train.images, mnist.valid.images, mode="resume" if resume else "new", progress=False).vae


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "mnist"))
    ap.add_argument("--runs", default=str(REPO / "runs" / "bench_rd"))
    ap.add_argument("--betas", default="0.25,0.5,1,2,4,8")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--test", type=int, default=1000, help="test images for rate/distortion/NLL")
    ap.add_argument("--k", type=int, default=500, help="importance samples for the NLL column")
    ap.add_argument("--pictures-from", default=None, help="a run folder whose model draws samples/reconstructions")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    mnist = load_mnist(args.data)
    test_x = fixed_binarize(mnist.test.images[: args.test], seed=0)
    runs = Path(args.runs)
    RESULTS.mkdir(parents=True, exist_ok=True)
    base = dict(
        batch_size=100, lr_schedule="cosine", epochs=args.epochs, valid_every=args.epochs, checkpoint_every_s=300
    )

    rows = []
    for beta in (float(b) for b in args.betas.split(",")):
        vae = trained(runs / f"beta_{beta:g}", VAEConfig.preset("iwae1"), TrainConfig(beta=beta, **base), mnist)
        ev = evaluate(vae, test_x, k=args.k, progress=False)
        rows.append({"beta": beta, **ev.to_dict()})
        print(f"beta {beta:g}: rate {ev.rate:.2f} distortion {ev.distortion:.2f} NLL {ev.nll:.2f}", flush=True)
    plot_rate_distortion(
        [r["beta"] for r in rows],
        [r["rate"] for r in rows],
        [r["distortion"] for r in rows],
        RESULTS / "vae_rate_distortion.png",
        title=f"β-VAE, binarized MNIST, {args.epochs} epochs each",
    )
    lines = [
        "# Rate-distortion across β (binarized MNIST, 784-200-200-50 MLP VAE)",
        "",
        f"{args.epochs} epochs per β, batch 100, Adam 1e-3 cosine; first {args.test} test images, "
        f"NLL = -IWAE bound with k={args.k}. Nats per image.",
        "",
        "| β | rate | distortion | -ELBO = rate + distortion | test NLL | NLL bits/dim |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['beta']:g} | {r['rate']:.2f} | {r['distortion']:.2f} | {r['rate'] + r['distortion']:.2f} | "
        f"{r['nll']:.2f} | {r['nll_bpd']:.4f} |"
        for r in rows
    ]
    atomic_write_text(RESULTS / "vae_rate_distortion.md", "\n".join(lines) + "\n")
    atomic_write_text(RESULTS / "vae_rate_distortion.json", json.dumps(rows, indent=2) + "\n")

    two = trained(runs / "latent2", VAEConfig.preset("iwae1", latents=(2,)), TrainConfig(**base), mnist)
    plot_latent_map(two, mnist.test.images, mnist.test.labels, RESULTS / "vae_latent_map.png")
    if args.pictures_from:
        vae = load_vae(args.pictures_from)
        plot_samples(vae, RESULTS / "vae_samples.png", n=100)
        plot_reconstructions(vae, mnist.test.images, RESULTS / "vae_reconstructions.png", n=20)
    print("wrote", *sorted(p.name for p in RESULTS.glob("vae_*")))


if __name__ == "__main__":
    main()
