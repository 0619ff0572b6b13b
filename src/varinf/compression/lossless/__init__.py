"""Lossless bits-back coding with a VAE (BB-ANS, Townsend et al. 2019) and its ``.vif`` files (see README.md)."""
