"""Benchmark: VAE and IWAE(k=50) on dynamically binarized MNIST, test NLL (k=5000) vs training time.

Setup of Burda et al. 2016 (arXiv:1509.00519): one stochastic layer, 784-200-200-50 tanh MLPs, Bernoulli
likelihood, batch 20, Adam (eps 1e-4) with their 3^i-epoch learning-rate schedule, training on fresh
binarizations; VAE trained with the ELBO (1 sample), IWAE with k=50 (DReG gradients here). Their numbers
after 3280 epochs: VAE 86.76, IWAE 84.78 nats.

The two models are trained in turns up to each CPU-time milestone (1 thread, process CPU time of training
steps), and at each milestone the test NLL is estimated with k=5000 importance samples: on the first
``--subset`` test images at intermediate milestones, on all 10,000 at the last. Everything is checkpointed:
rerunning the command continues where it stopped; raising ``--budget-h`` continues training.

    nice -n 10 python benchmarks/vae_mnist.py --budget-h 3 > runs/bench_mnist.log 2>&1 &

Writes benchmarks/results/vae_mnist.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch

from varinf.data import fixed_binarize, load_mnist
from varinf.utils import atomic_write_text
from varinf.vae import TrainConfig, VAEConfig, evaluate, load_vae, train

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
LITERATURE = {"vae": 86.76, "iwae": 84.78}  # Burda et al. 2016, table 1, k=1 / k=50, one stochastic layer
MODELS = {
    "vae": TrainConfig(objective="elbo", k=1, valid_every=10),
    "iwae": TrainConfig(objective="iwae", k=50, gradient="dreg", valid_every=2),
}


def milestones(budget_h: float) -> list[float]:
    """CPU seconds at which the test NLL is measured: 0.25, 0.5, 1, 2, 3, ... hours up to the budget."""
    marks = [0.25, 0.5, *range(1, math.ceil(budget_h))]
    return [h * 3600 for h in marks if h < budget_h] + [budget_h * 3600]


def load_results(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"models": {}}


def write_report(res: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "vae_mnist.json", json.dumps(res, indent=2) + "\n")
    lines = [
        "# VAE vs IWAE(k=50) on dynamically binarized MNIST",
        "",
        f"Machine: {res.get('machine', '?')}; training time = process CPU time of training steps (wall h: their wall time on the shared machine).",
        "Test NLL = -IWAE bound with k=5000 (nats, lower is better), ± standard error over test images; intermediate",
        "milestones use the first 500 test images (the same images for both models, so their *difference* is far more",
        "precise than the ± suggests), the last milestone all 10,000.",
        "Literature (Burda et al. 2016, 3280 epochs): VAE 86.76, IWAE k=50 84.78. Goal: IWAE ≤ 85.0.",
        "",
        "| model | CPU h | wall h | epochs | test images | test NLL | -ELBO | rate | distortion | bits/dim |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in res["models"].items():
        for p in m["points"]:
            lines.append(
                f"| {name} | {p['cpu_s'] / 3600:.2f} | {p['wall_s'] / 3600:.2f} | {p['epochs']} | {p['num_examples']} | "
                f"{p['nll']:.2f} ± {p['nll_stderr']:.2f} | {-p['elbo']:.2f} | {p['rate']:.2f} | {p['distortion']:.2f} | "
                f"{p['nll_bpd']:.4f} |"
            )
    v, i = res["models"].get("vae"), res["models"].get("iwae")
    if v and i and v["points"] and i["points"]:
        pv, pi = v["points"][-1], i["points"][-1]
        lines += [
            "",
            f"Last milestone: IWAE/VAE test NLL ratio {pi['nll'] / pv['nll']:.4f}; "
            f"epochs per CPU hour: VAE {pv['epochs'] / (pv['cpu_s'] / 3600):.0f}, IWAE {pi['epochs'] / (pi['cpu_s'] / 3600):.1f} "
            f"(IWAE epoch costs {pv['epochs'] / (pv['cpu_s']) / (pi['epochs'] / pi['cpu_s']):.1f}x a VAE epoch).",
            f"Gap to literature: VAE {pv['nll'] - LITERATURE['vae']:+.2f} nats, IWAE {pi['nll'] - LITERATURE['iwae']:+.2f} nats; "
            f"IWAE goal 85.0 {'met' if pi['nll'] <= 85.0 else 'not met'}.",
        ]
        if max(pv["num_examples"], pi["num_examples"]) < 10_000:
            lines.append(
                f"This run was stopped at {pi['cpu_s'] / 3600:.2f} CPU h per model, before a full-test-set milestone: "
                "every row uses the first 500 test images."
            )
    atomic_write_text(RESULTS / "vae_mnist.md", "\n".join(lines) + "\n")
    plot(res)


def plot(res: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (name, m), color in zip(res["models"].items(), ("C0", "C1")):
        pts = m["points"]
        if not pts:
            continue
        t = [p["cpu_s"] / 3600 for p in pts]
        ax.errorbar(
            t,
            [p["nll"] for p in pts],
            yerr=[p["nll_stderr"] for p in pts],
            marker="o",
            color=color,
            label=f"{name} (test NLL, k=5000)",
        )
        ax.axhline(LITERATURE[name], color=color, ls=":", label=f"{name}, Burda et al. (3280 epochs)")
    ax.axhline(85.0, color="k", ls="--", lw=0.8, label="goal 85.0")
    ax.set_xlim(0, max([p["cpu_s"] / 3600 for m in res["models"].values() for p in m["points"]] + [0.5]) * 1.1)
    ax.set_xlabel("training CPU time (hours, 1 thread)")
    ax.set_ylabel("test NLL (nats)")
    ax.set_title("Dynamically binarized MNIST")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "vae_mnist.png", dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "mnist"))
    ap.add_argument("--runs", default=str(REPO / "runs" / "bench_mnist"))
    ap.add_argument("--budget-h", type=float, default=3.0, help="training CPU hours per model")
    ap.add_argument("--subset", type=int, default=1000, help="test images at intermediate milestones")
    ap.add_argument("--k", type=int, default=5000)
    ap.add_argument("--models", default="vae,iwae")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--report-only", action="store_true", help="re-render the markdown and PNG from the JSON")
    args = ap.parse_args()
    if args.report_only:
        write_report(load_results(RESULTS / "vae_mnist.json"))
        return
    torch.set_num_threads(args.threads)
    mnist = load_mnist(args.data)
    test_x = fixed_binarize(mnist.test.images, seed=0)
    res = load_results(RESULTS / "vae_mnist.json")
    res["machine"] = (
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)"
    )
    res["budget_cpu_h_per_model"] = args.budget_h
    names = args.models.split(",")
    marks = milestones(args.budget_h)
    for mark in marks:
        for name in names:
            entry = res["models"].setdefault(name, {"config": MODELS[name].to_dict(), "points": []})
            final = mark == marks[-1]
            x = test_x if final else test_x[: args.subset]
            # a milestone is done once measured on enough images (the last one on all of them), so rerunning
            # with the same budget after an interrupted final evaluation evaluates on the whole test set
            if any(abs(p["milestone_s"] - mark) < 1 and p["num_examples"] >= len(x) for p in entry["points"]):
                continue
            run = Path(args.runs) / name
            config = TrainConfig(**{**MODELS[name].to_dict(), "epochs": 3280, "cpu_budget_s": mark})
            resume = (run / "checkpoint.safetensors").is_file()
            print(f"== {name}: train to {mark / 3600:.2f} CPU h (resume={resume})", flush=True)
            result = train(
                run,
                VAEConfig.preset("iwae1"),
                config,
                mnist.train.images,
                mnist.valid.images,
                mode="resume" if resume else "new",
                progress=False,
            )
            t0 = time.time()
            ev = evaluate(load_vae(run), x, k=args.k, batch_size=100, progress=False)
            point = {
                "milestone_s": mark,
                "cpu_s": result.cpu_s,
                "wall_s": result.wall_s,
                "epochs": result.epochs,
                "steps": result.steps,
                "eval_s": time.time() - t0,
                **ev.to_dict(),
            }
            entry["points"].append(point)
            print(f"== {name} @ {result.cpu_s / 3600:.2f} CPU h, {result.epochs} epochs: {ev.summary()}", flush=True)
            write_report(res)


if __name__ == "__main__":
    main()
