"""
A small VAE on MNIST: samples, latent map, rate and distortion, NLL
===================================================================

A variational autoencoder is amortized VI: an encoder maps each image x to its own q(z | x), a decoder
gives p(x | z), and both are trained on the ELBO

.. math::

   \\log p(x) \\;\\ge\\; \\mathbb{E}_{q(z\\mid x)}[\\log p(x\\mid z)] - \\mathrm{KL}(q(z\\mid x)\\,\\|\\,p(z))
   \\;=\\; -(\\text{distortion} + \\text{rate}).

This example trains a VAE with a **two-dimensional** latent space for about half a minute of CPU (so its
latent space can be drawn), then measures its test negative log-likelihood by importance sampling. The
data are dynamically binarized MNIST digits from ``../shared/data/mnist``; without that folder, the 8×8
digits shipped with scikit-learn.
"""

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from varinf import vae

torch.manual_seed(0)
here = Path(__file__).resolve() if "__file__" in globals() else Path.cwd()
shared = os.environ.get("VARINF_SHARED_DATA") or next(
    (str(p / "shared" / "data") for p in here.parents if (p / "shared" / "data" / "mnist").is_dir()), None)

if shared is not None:
    from varinf.data import load_mnist

    mnist = load_mnist(Path(shared) / "mnist")
    train_x, test_x, test_y = mnist.train.images[:20000], mnist.test.images[:500], mnist.test.labels[:500]
    shape = (1, 28, 28)
else:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.as_tensor(np.clip(digits.images * 16, 0, 255), dtype=torch.uint8)[:, None]
    train_x, test_x, test_y = images[:1500], images[1500:], torch.as_tensor(digits.target[1500:])
    shape = (1, 8, 8)

# %%
# Train for about 30 CPU seconds
# ------------------------------
# ``VAEConfig`` describes the networks (MLPs with two hidden layers of 200 tanh units here) and the
# Bernoulli likelihood; ``TrainConfig`` the optimization. Training writes a run folder (checkpoints,
# history) that ``varinf vae eval`` and ``varinf vae plot`` can read too.
config = vae.VAEConfig(data_shape=shape, latents=(2,), hidden=((200, 200),))
train_config = vae.TrainConfig(batch_size=100, lr=1e-3, lr_schedule="constant", epochs=None, cpu_budget_s=30,
                               valid_every=1000, checkpoint_every_s=None, seed=0)
with tempfile.TemporaryDirectory() as run_dir:
    result = vae.train(run_dir, config, train_config, train_x, progress=False)
model = result.vae.eval()
print(f"{result.steps} steps, {result.epochs} epochs, {result.cpu_s:.0f} CPU s")

# %%
# Samples from the model
# ----------------------
# Decode draws z ~ p(z) = N(0, I): the mean of p(x | z) for each.
samples = model.sample(64).numpy()
h, w = shape[1:]
grid = samples.reshape(8, 8, h, w).transpose(0, 2, 1, 3).reshape(8 * h, 8 * w)
fig, ax = plt.subplots(figsize=(4, 4))
ax.imshow(grid, cmap="gray_r")
ax.set_axis_off()
ax.set_title("64 samples")

# %%
# The latent map
# --------------
# Each test digit's posterior mean E[z | x], coloured by its label: the encoder arranges the digits in
# the plane without ever seeing a label.
with torch.no_grad():
    x = model.likelihood.prepare(test_x)
    mean = model.q(x).mean.numpy()
fig, ax = plt.subplots(figsize=(5, 4.2))
sc = ax.scatter(mean[:, 0], mean[:, 1], c=test_y.numpy(), cmap="tab10", s=8)
fig.colorbar(sc, ax=ax, label="digit")
ax.set_xlabel("z₁")
ax.set_ylabel("z₂")
ax.set_title("E[z | x] of held-out digits")
fig.tight_layout()

# %%
# Rate, distortion and the test NLL
# ---------------------------------
# :func:`varinf.vae.evaluate` reports the ELBO split into rate = KL(q(z|x) ‖ p(z)) and distortion
# = −E log p(x|z), and the negative log-likelihood −log p(x) estimated by importance sampling with
# k draws of q(z | x) per image (the IWAE bound, which tightens as k grows).
ev = vae.evaluate(model, x, k=1000, batch_size=50, progress=False)
print(f"test NLL {ev.nll:.2f} ± {ev.nll_stderr:.2f} nats (k = {ev.k}, {ev.num_examples} images); "
      f"-ELBO {-ev.elbo:.2f} = rate {ev.rate:.2f} + distortion {ev.distortion:.2f}")
fig, ax = plt.subplots(figsize=(5, 2.6))
ax.barh(["rate", "distortion", "−ELBO", "NLL (IS)"], [ev.rate, ev.distortion, -ev.elbo, ev.nll],
        color=["C0", "C1", "C2", "C3"])
ax.set_xlabel("nats per image")
fig.tight_layout()
plt.show()
