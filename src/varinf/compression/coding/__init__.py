"""Entropy-coding primitives: integer tables, the ANS stack coder, the ``.vif`` container (see README.md).

Everything here is integers and bytes; nothing depends on a model. Units: bits.
"""
