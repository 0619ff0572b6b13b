"""Run by ``torchrun`` from test_distributed_fit.py: each process holds a block of the rows of a logistic
regression and fits it; rank 0 writes q's mean and sd (full batch and minibatch) to the file in argv[1]."""

from __future__ import annotations

import json
import sys

import torch

import varinf
from varinf.distributed import init_distributed, shard_rows
from varinf.models import LogisticRegression


def data(n: int = 1200, d: int = 3) -> dict[str, torch.Tensor]:
    full = LogisticRegression.synthetic(n=n, d=d, seed=3)
    return {"X": full.data["X"], "y": full.data["y"]}


def fits(model) -> dict[str, list[float]]:
    out = {}
    for name, batch in (("full", None), ("minibatch", 300)):
        res = varinf.fit(model, "fullrank", batch_size=batch, progress=False, max_steps=200, lr=0.05,
                         tol_rel_obj=None, diagnose_draws=200)  # fmt: skip
        q = res.posterior()
        out[name] = {"mean": q.mean.tolist(), "sd": q.stddev.tolist(), "khat": res.diagnostics.khat,
                     "steps": res.num_steps}  # fmt: skip
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    world = init_distributed()
    model = LogisticRegression(**shard_rows(data(), world), distributed=True)
    assert model.plate.size < model.num_rows or world.size == 1
    result = fits(model)
    if world.is_main:
        with open(sys.argv[1], "w") as f:
            json.dump(result, f)
