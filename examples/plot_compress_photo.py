"""
Compressing a photo: a rate–distortion curve against JPEG and WebP
==================================================================

A learned lossy codec is a VAE whose latents are quantized and entropy coded: the rate is the number
of bits the entropy coder writes (−log₂ of the latents' probability under the model's prior), the
distortion the error of the decoded image. varinf ships a mean-scale hyperprior codec (Minnen, Ballé &
Toderici 2018) with a checkerboard context (He et al. 2021) trained on photos that are not the Kodak set, and
writes real ``.vif`` files that decode bit-exactly on other machines.

This example codes one Kodak photo (``../shared/data/kodak``; without that folder, scikit-image's
``astronaut`` picture, which was among the training photos) at each of its seven qualities, and JPEG and WebP (Pillow)
at a range of their quality settings.
"""

# %%
import io
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from varinf.compression import compress_image, decompress_image, evaluate_pillow, load_codec, psnr

here = Path(__file__).resolve() if "__file__" in globals() else Path.cwd()
shared = os.environ.get("VARINF_SHARED_DATA") or next(
    (str(p / "shared" / "data") for p in here.parents if (p / "shared" / "data" / "kodak").is_dir()), None)
if shared is not None:
    image = np.asarray(Image.open(sorted((Path(shared) / "kodak").glob("*.png"))[22]).convert("RGB"))
    name = "Kodak image 23"
else:
    from skimage.data import astronaut

    image = astronaut()[::2, ::2].copy()
    name = "astronaut (in the training photos)"
H, W, _ = image.shape
print(f"{name}: {W} × {H} pixels")

# %%
# Encode and decode at six qualities
# ----------------------------------
# ``compress_image`` returns the bytes of a ``.vif`` file (header, model id, table digest, CRC and the
# ANS-coded latents); ``decompress_image`` reads them back. The file's size is within a fraction of a
# percent of the bits the model estimates.
codec = load_codec()
ours = []
for quality in range(int(codec.max_quality) + 1):
    t0 = time.perf_counter()
    packed = compress_image(image, codec, quality)
    decoded = decompress_image(packed.data, codec)
    seconds = time.perf_counter() - t0
    bpp = 8 * len(packed.data) / (H * W)
    ours.append((bpp, psnr(image, decoded), decoded))
    print(f"quality {quality}: {len(packed.data):6d} bytes = {bpp:.3f} bpp, PSNR {ours[-1][1]:.2f} dB, "
          f"file / estimated bits {8 * len(packed.data) / packed.estimated_bits:.4f}, {seconds:.2f} s")

# %%
# JPEG and WebP on the same image
# -------------------------------
jpeg = evaluate_pillow([image], "JPEG", [10, 20, 30, 40, 50, 60, 70, 80, 90], progress=False)
webp = evaluate_pillow([image], "WEBP", [5, 15, 30, 45, 60, 75, 85, 95], progress=False)

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot([p[0] for p in ours], [p[1] for p in ours], "o-", label="varinf (learned)")
ax.plot([p.bpp for p in jpeg], [p.psnr for p in jpeg], "s-", label="JPEG (Pillow)")
ax.plot([p.bpp for p in webp], [p.psnr for p in webp], "^-", label="WebP (Pillow)")
ax.set_xlabel("bits per pixel (file size)")
ax.set_ylabel("PSNR (dB)")
ax.set_xlim(0, max(p[0] for p in ours) * 1.3)
ax.grid(alpha=0.3)
ax.legend()
ax.set_title(f"rate–distortion on {name}")
fig.tight_layout()

# %%
# At the same size
# ----------------
# The decoded image at the learned codec's lowest rate, next to a JPEG of about the same file size.
bpp0, psnr0, decoded0 = ours[0]
best_q, best = None, None
for q in range(2, 96):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=q)
    if 8 * buf.tell() / (H * W) <= bpp0:
        best_q, best = q, buf.getvalue()
jpeg_img = np.asarray(Image.open(io.BytesIO(best)).convert("RGB")) if best is not None else image
crop = (slice(H // 4, H // 4 + 192), slice(W // 3, W // 3 + 256))
fig, axes = plt.subplots(1, 3, figsize=(11, 3.3))
for ax, img, title in zip(axes, [image, decoded0, jpeg_img],
                          ["original", f"varinf {bpp0:.2f} bpp, {psnr0:.1f} dB",
                           f"JPEG q={best_q} {8 * len(best or b'') / (H * W):.2f} bpp, {psnr(image, jpeg_img):.1f} dB"]):
    ax.imshow(img[crop])
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
fig.tight_layout()
plt.show()
