"""Rate-distortion measurement: PSNR/SSIM/MS-SSIM, Bjøntegaard deltas, RD points vs Pillow codecs (see README.md)."""
