"""
Data-parallel fitting with torchrun (shown, not run)
====================================================

A model with data can be fitted by several processes, each holding a block of rows: sums over rows
are all-reduced (value and gradient in one collective per step), so every process takes the same
steps and q equals the one-process q up to floating-point summation order. This needs several
processes, so the script below is **shown, not run** when the documentation is built; the figure shows
the throughput that ``benchmarks/big_data.py`` measured with it.

Save the script as ``fit_big.py`` and launch it on one machine with two processes::

    torchrun --nproc_per_node=2 fit_big.py

or on two machines with eight processes each (run on both, with ``--node_rank=0`` and ``1``)::

    torchrun --nnodes=2 --nproc_per_node=8 --node_rank=0 --rdzv_backend=c10d \\
        --rdzv_endpoint=HOST:29500 fit_big.py

.. code-block:: python

    # fit_big.py
    import torch
    from torch.distributions import Bernoulli, Normal

    import varinf
    from varinf import Latent, Model

    world = varinf.distributed.init_distributed()        # gloo on CPU; device="cuda" for NCCL
    torch.manual_seed(0)                                  # the same data on every process ...
    X = torch.randn(1_000_000, 20)
    y = Bernoulli(logits=X @ torch.linspace(-1, 1, 20)).sample()
    rows = varinf.distributed.shard_rows({"X": X, "y": y})  # ... of which each keeps its block

    model = Model(
        [Latent("beta", (20,))],
        log_prior=lambda beta: Normal(0, 1).log_prob(beta).sum(),
        log_likelihood=lambda beta, data: Bernoulli(logits=data["X"] @ beta).log_prob(data["y"]),
        data=rows,
        distributed=True,                                 # sums over rows are all-reduced
    )
    res = varinf.fit(model, "fullrank", batch_size=4096)
    if world.is_main:                                     # rank 0 prints and saves
        print(res.summary())
        res.save("fit.safetensors")

In practice each process would load only its own rows (``shard_rows`` is for data every process has).
"""

# %%
# Measured: one process against two
# ---------------------------------
# From ``benchmarks/results/big_data.json`` (1,000,000 rows × 20, gloo, one thread per process): rows
# per second of full-batch steps, and the minibatch fit's wall time. Full-batch steps are compute-bound
# and scale with processes; minibatch steps of 1000 rows are not — one collective per step costs more
# than the rows' work.
import json
from pathlib import Path

import matplotlib.pyplot as plt

here = Path(__file__).resolve() if "__file__" in globals() else Path.cwd()
results = next(p / "benchmarks" / "results" for p in [here, *here.parents] if (p / "benchmarks" / "results").is_dir())
throughput = json.loads((results / "big_data.json").read_text())["results"]["1m"]["throughput"]
worlds = sorted(throughput, key=int)
rows_per_s = [throughput[w]["full_batch_rows_per_s"] / 1e6 for w in worlds]
fit_s = [throughput[w]["minibatch_fit_s"] for w in worlds]
print(f"full-batch rows/s: {rows_per_s[-1] / rows_per_s[0]:.2f}x with {worlds[-1]} processes")

fig, axes = plt.subplots(1, 2, figsize=(8, 3))
x = range(len(worlds))
axes[0].bar(x, rows_per_s, color="C0", tick_label=worlds)
axes[0].set_xlabel("processes")
axes[0].set_ylabel("million rows / s")
axes[0].set_title("full-batch steps")
axes[1].bar(x, fit_s, color="C1", tick_label=worlds)
axes[1].set_xlabel("processes")
axes[1].set_ylabel("wall seconds")
axes[1].set_title("minibatch fit (batches of 1000)")
fig.tight_layout()
plt.show()
