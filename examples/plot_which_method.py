"""
Which method when: auto, Batch-and-Match, Pathfinder and ADVI on one posterior
==============================================================================

Four ways to fit the same full-rank Gaussian to the same posterior, timed on this machine and scored
against reference draws from long NUTS runs (posteriordb). The measured trade-offs over posteriordb's posteriors
are on :doc:`/guide/choosing`; this example reproduces one row of that table.

* ``method="auto"`` (default): Pathfinder's best Gaussian along an L-BFGS path, then Batch-and-Match;
  estimates PSIS-corrected when k̂ allows.
* ``method="bam"``: Batch-and-Match alone (closed-form updates from batches of scores).
* ``method="pathfinder"``: multi-path Pathfinder, no stochastic optimization.
* ``method="advi"``: stochastic-gradient ADVI, the general tool (any family, bound, minibatches).
"""

# %%
import os
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import varinf
from varinf.diagnostics import DiagnosticWarning

warnings.simplefilter("ignore", DiagnosticWarning)  # k̂ is printed below instead

here = Path(__file__).resolve() if "__file__" in globals() else Path.cwd()
shared = os.environ.get("VARINF_SHARED_DATA") or next(
    (str(p / "shared" / "data") for p in here.parents if (p / "shared" / "data" / "posteriordb").is_dir()), None)

# %%
# The posterior and its reference
# -------------------------------
# With posteriordb's files (``../shared/data/posteriordb``) the target is ``arK-arK`` (an autoregressive
# model, 7 parameters) with its reference draws; without them, the normal-gamma model, whose posterior
# moments are known exactly.
if shared is not None:
    from varinf.posteriordb import compare_to_reference, load_posterior

    post = load_posterior("arK-arK", Path(shared) / "posteriordb")
    model = post.model()
    ref_mean = torch.as_tensor(post.reference.draws.reshape(-1, post.reference.draws.shape[-1]).mean(0))

    def errors(draws, weights=None):
        cmp = compare_to_reference(model.reference_quantities(draws), post.reference, model.reference_names,
                                   weights=weights)
        return float(np.max(np.abs(cmp.mean_error))), np.asarray(cmp.sd_ratio)
else:
    model = varinf.load_example("normal_gamma").double()
    exact = model.exact_moments()

    def errors(draws, weights=None):
        w = torch.ones(len(draws["mu"]), dtype=torch.float64) if weights is None else torch.as_tensor(weights)
        w = w / w.sum()
        errs, ratios = [], []
        for name in ("mu", "tau"):
            x = draws[name].double()
            m = (w * x).sum()
            s = ((w * (x - m) ** 2).sum()).sqrt()
            errs.append(abs(m - exact[name][0]) / exact[name][1])
            ratios.append(s / exact[name][1])
        return float(max(errs)), np.array([float(r) for r in ratios])

print(model)

# %%
# Fit with each method, three times each
# --------------------------------------
methods = ["auto", "bam", "pathfinder", "advi"]
results = {}
for method in methods:
    walls = []
    for seed in range(3):
        t0 = time.perf_counter()
        res = varinf.fit(model, "fullrank", method=method, seed=seed)
        walls.append(time.perf_counter() - t0)
    d = res.diagnostics
    if res.psis_corrected:  # the estimates the summary reports: PSIS-corrected
        weights = torch.exp(d.psis.smoothed_log_weights)
        err, ratios = errors(d.draws, weights)
    else:
        err, ratios = errors(d.draws)
    results[method] = dict(wall=float(np.median(walls)), err=err, sd=(ratios.min(), ratios.max()),
                           khat=d.khat, grads=res.grad_evals, route=" -> ".join(res.route) if res.route else method)
    r = results[method]
    print(f"{method:>10}: {r['wall']:5.2f} s (fit + diagnostics, median of 3), {r['grads']:5d} gradients, "
          f"error {r['err']:.3f} sd, sd ratio {r['sd'][0]:.2f}-{r['sd'][1]:.2f}, k-hat {r['khat']:.2f}  [{r['route']}]")

# %%
# Time and accuracy side by side
# ------------------------------
fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
x = np.arange(len(methods))
axes[0].bar(x, [results[m]["wall"] for m in methods], color="C0")
axes[0].set_ylabel("seconds (fit + diagnostics)")
axes[1].bar(x, [results[m]["err"] for m in methods], color="C1")
axes[1].axhline(0.1, color="0.5", ls="--", lw=1)
axes[1].set_ylabel("largest mean error (posterior sds)")
axes[2].bar(x, [results[m]["khat"] for m in methods], color="C2")
axes[2].axhline(0.7, color="0.5", ls="--", lw=1)
axes[2].set_ylabel("PSIS k̂")
for ax in axes:
    ax.set_xticks(x, methods)
fig.suptitle("one posterior, four methods (dashed: 0.1 sd and k̂ = 0.7)")
fig.tight_layout()

# %%
# Which to pick? For a posterior you can evaluate with gradients and no minibatches, the default
# (``auto``) is the fastest route to an accurate Gaussian and reports PSIS-corrected estimates.
# ``pathfinder`` is cheapest but least accurate away from Gaussian shapes; ``bam`` alone is a good
# Gaussian in few gradients; ``advi`` is slower here but the only method for minibatches, flows and
# chosen objectives. Measured over posteriordb's posteriors: :doc:`/guide/choosing`.
plt.show()
