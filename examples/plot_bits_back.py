"""
Bits-back lossless coding with a VAE
====================================

Bits-back coding (BB-ANS; Townsend, Bird & Barber 2019) turns a VAE into a *lossless* compressor whose
code length approaches the model's negative ELBO. For each image the coder, working on one ANS stack,

1. **pops** a latent z from the stack using q(z | x) — reading bits back that earlier images left;
2. **pushes** the pixels x under p(x | z);
3. **pushes** z under the prior p(z).

Net cost per image: −log₂ p(x | z) − log₂ p(z) + log₂ q(z | x), whose average is −ELBO / ln 2. Every
probability comes from an integer version of the VAE, so files decode bit-exactly on any machine.

varinf ships a VAE for binarized MNIST. The digits come from ``../shared/data/mnist`` (test set, binarized
at 0.5); without it, from the shipped model itself (its own samples, binarized).
"""

# %%
import bz2
import gzip
import lzma
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from varinf.compression import compress_lossless, decompress_lossless, load_bitsback

here = Path(__file__).resolve() if "__file__" in globals() else Path.cwd()
shared = os.environ.get("VARINF_SHARED_DATA") or next(
    (str(p / "shared" / "data") for p in here.parents if (p / "shared" / "data" / "mnist").is_dir()), None)

codec = load_bitsback()
if shared is not None:
    from varinf.data import load_mnist

    digits = (load_mnist(Path(shared) / "mnist").test.images[:1000, 0].numpy() > 127).astype(np.uint8)
else:
    import torch

    torch.manual_seed(0)
    digits = (codec.vae.sample(1000)[:, 0].numpy() > 127).astype(np.uint8)
print(f"{len(digits)} binary images of {digits.shape[1]} × {digits.shape[2]} pixels")

# %%
# Compress, decompress, compare
# -----------------------------
t0 = time.perf_counter()
packed = compress_lossless(digits, codec)
t1 = time.perf_counter()
restored = decompress_lossless(packed.data, codec)
t2 = time.perf_counter()
assert np.array_equal(restored, digits) and restored.dtype == digits.dtype  # lossless, bit for bit
dims = digits.size
ours = 8 * len(packed.data) / dims
print(f"bits-back: {len(packed.data)} bytes = {ours:.4f} bits/dim; encode {t1 - t0:.2f} s, decode {t2 - t1:.2f} s")

packed_bits = np.packbits(digits.reshape(len(digits), -1), axis=1).tobytes()
others = {name: 8 * len(f(packed_bits)) / dims
          for name, f in [("gzip", lambda b: gzip.compress(b, 9)), ("bz2", lambda b: bz2.compress(b, 9)),
                          ("lzma", lambda b: lzma.compress(b, preset=9))]}
for name, bpd in others.items():
    print(f"{name:>9}: {bpd:.4f} bits/dim")

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [1, 1.4]})
axes[0].imshow(np.hstack(list(digits[:8])), cmap="gray_r")
axes[0].set_axis_off()
axes[0].set_title("first 8 of the images coded")
names = ["bits-back (varinf)", *others]
values = [ours, *others.values()]
axes[1].barh(names[::-1], values[::-1], color=["C1", "C1", "C1", "C0"])
axes[1].set_xlabel("bits per pixel (whole file)")
axes[1].set_title("lossless code length")
fig.tight_layout()
plt.show()
