"""
Bring your own model: eight schools in Stan, NumPyro and PyMC
=============================================================

A model you already wrote for Stan, NumPyro or PyMC does not need rewriting: ``varinf.StanModel``,
``varinf.from_numpyro`` and ``varinf.from_pymc`` wrap it as a varinf model. The foreign system keeps its own
log density, unconstrained space and transforms; varinf asks it for the log density and gradient of a batch
of draws in one call and runs its usual methods and diagnostics on top. Here the same non-centred
eight-schools model, written three ways, is fitted by the default ``varinf.fit`` and compared with varinf's
built-in PyTorch version.
"""

# %%
# Stan
# ----
# The program is compiled once (stanc and the system C++ compiler; the first program of a toolchain also
# precompiles the Stan headers, about a minute of CPU) into varinf's cache, ``~/.cache/varinf``; later uses
# load it in milliseconds. Data are a dict or a JSON file, as CmdStan reads them.
import matplotlib.pyplot as plt
import numpy as np
import torch

import varinf

y = [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0]
sigma = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]
schools = ["Choate", "Deerfield", "Phillips Andover", "Phillips Exeter", "Hotchkiss", "Lawrenceville",
           "St. Paul's", "Mt. Hermon"]  # fmt: skip

program = """
data { int<lower=0> J; vector[J] y; vector<lower=0>[J] sigma; }
parameters { real mu; real<lower=0> tau; vector[J] theta_tilde; }
transformed parameters { vector[J] theta = mu + tau * theta_tilde; }
model {
  mu ~ normal(0, 5);
  tau ~ cauchy(0, 5);
  theta_tilde ~ normal(0, 1);
  y ~ normal(theta, sigma);
}
generated quantities { array[J] real y_rep = normal_rng(theta, sigma); }
"""
stan_model = varinf.StanModel(program, {"J": 8, "y": y, "sigma": sigma}, name="schools_stan")
stan_fit = varinf.fit(stan_model, seed=0)
print(stan_fit.summary())

# %%
# Draws come back constrained and named as Stan names them, transformed parameters and generated
# quantities included; summaries count from 1 as Stan does (``theta[1]``), and ``columns`` gives Stan's flat
# columns.
draws = stan_fit.draws(2000, seed=1)
print({name: tuple(v.shape) for name, v in draws.items()})
print(list(stan_model.columns(draws))[:4])

# %%
# NumPyro
# -------
# A model function and its arguments. NumPyro's potential function is jitted and vectorized over draws in
# float64 (a scoped switch: the user's JAX configuration is left alone); deterministic sites are derived
# quantities, observed sites are drawn afresh.
import numpyro
import numpyro.distributions as dist


def eight_schools(sigma, y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("J", len(sigma)):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        theta = numpyro.deterministic("theta", mu + tau * theta_tilde)
        numpyro.sample("y", dist.Normal(theta, sigma), obs=y)


numpyro_fit = varinf.fit(varinf.from_numpyro(eight_schools, np.array(sigma), y=np.array(y)), seed=0)

# %%
# PyMC
# ----
# PyMC's log density and its gradient in PyMC's transformed space, compiled by PyTensor and vectorized over
# draws. Dims and coords carry over: the summary names ``theta[Choate]``, and so does the ArviZ export.
import pymc as pm

with pm.Model(coords={"school": schools}) as pm_model:
    mu = pm.Normal("mu", 0.0, 5.0)
    tau = pm.HalfCauchy("tau", 5.0)
    theta_tilde = pm.Normal("theta_tilde", 0.0, 1.0, dims="school")
    theta = pm.Deterministic("theta", mu + tau * theta_tilde, dims="school")
    pm.Normal("y", theta, np.array(sigma), observed=np.array(y), dims="school")

pymc_fit = varinf.fit(varinf.from_pymc(pm_model, name="schools_pymc"), seed=0)
print("\n".join(str(pymc_fit.summary()).splitlines()[:12]))

# %%
# Four systems, one posterior
# ---------------------------
# The same model gives the same fit whichever system evaluates it (the Stan program differs from the others
# only by the half-Cauchy's constant log 2, which Stan's ``cauchy`` on a ``<lower=0>`` parameter leaves
# out): the foreign models compute in float64, so the built-in model is fitted in float64 too, and all four
# fits take the same route, the same number of gradients and reach the same k̂. Below: the school effects'
# posterior medians and 90 % intervals.
torch_fit = varinf.fit(varinf.load_example("eight_schools").double(), seed=0)
fits = {"PyTorch (built-in)": torch_fit, "Stan": stan_fit, "NumPyro": numpyro_fit, "PyMC": pymc_fit}

fig, ax = plt.subplots(figsize=(7, 3.6))
for k, (label, fit) in enumerate(fits.items()):
    theta_draws = fit.draws(4000, seed=2)["theta"].double()
    lo, mid, hi = torch.quantile(theta_draws, torch.tensor([0.05, 0.5, 0.95], dtype=torch.float64), dim=0)
    x = np.arange(8) + (k - 1.5) * 0.18
    ax.errorbar(x, mid, yerr=[mid - lo, hi - mid], fmt="o", ms=4, capsize=2, label=label)
ax.set_xticks(np.arange(8), [s.split()[-1] for s in schools], rotation=30)
ax.set_ylabel("school effect θ")
ax.legend(fontsize=8, ncols=2)
ax.set_title("eight schools: the same fit from four systems")
fig.tight_layout()

for label, fit in fits.items():
    d = fit.diagnostics
    print(f"{label:20s} k-hat {d.khat:.2f}  gradient evaluations {fit.grad_evals}")
