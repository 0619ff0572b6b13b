"""How large an image a payload may declare: decoding work bounded by the size of the file.

A lossy file declares its image size in its header, and the decoder allocates and runs the synthesis at that
size. Entropy-coded symbols are not free: every symbol pushed on an ANS stack that holds more than one word
grows it by at least :func:`~varinf.compression.coding.ans.growth_floor` bits of its weight (a positive number
for every weight, see :mod:`varinf.compression.coding.ans`), so a stream of ``B`` bits holds latents whose floors
sum to less than ``B - 32`` bits, plus the floors of the few symbols pushed while the stack still fitted in one
word. We allow :data:`SLACK_BITS` for those:

* before decoding (:func:`check_declared_size`): the *least* floor any latents of the declared shape can have,
  :func:`latent_floor` (every ``z`` symbol at its channel's most probable value, every ``y`` symbol at the most
  probable value of the cheapest row), must fit in ``B + SLACK_BITS``; nothing is allocated otherwise;
* while decoding (:func:`decoding_budget`, enforced by the stack at every pop): the floor of the symbols
  actually decoded must fit too. This refuses, as soon as the hyper-latent is decoded, crafted payloads that run
  dry and then decode the free bottom symbol of a stack over and over;
* the encoder checks its own stream the same way, with one bit to spare (:func:`check_encoded`), so it never
  writes a file the decoder refuses. Natural images pass by a wide margin: the only way to fail is a long run of
  the rarest values pushed while the stack is still one word.

For the shipped (checkerboard) model the least floor is about 20.1 bits per 64 x 64 block (0.0049 bpp; the
cheapest stream we can build costs 0.016 bpp), so a payload of ``n`` bytes may declare at most about ``1,630 n`` pixels
(:func:`max_pixels`); on top of that every file is limited to
:data:`~varinf.compression.lossy.image_file.MAX_PIXELS`. Units: bits, and integer floors in bits *
:data:`~varinf.compression.coding.ans.FLOOR_SCALE`.

Example::

    >>> from varinf.compression.lossy.pretrained import load_codec
    >>> from varinf.compression.lossy.size_bound import max_pixels
    >>> 1000 * 1000 < max_pixels(load_codec(), 1024) < 2000 * 2000
    True
"""

from __future__ import annotations

from ..coding.ans import FLOOR_SCALE, AnsStack, CodingError, least_floors
from .latents import LatentTables

__all__ = ["SLACK_BITS", "check_declared_size", "check_encoded", "decoding_budget", "latent_floor", "max_pixels"]

SLACK_BITS = 32  # floors allowed for symbols pushed while the stack still fitted in one word


def latent_floor(tables: LatentTables, y_shape: tuple[int, int, int, int]) -> int:
    """Least total floor (bits * FLOOR_SCALE) of any latents ``y`` of shape ``(B, M, h, w)`` coded with ``tables``.

    Factorized prior: channel ``c`` of ``y`` always uses row ``c``. Hyperprior family (``z_table`` present: scale,
    mean-scale and checkerboard latents): ``z`` has one row per channel and shape
    ``(B, len(z_table), ceil(h / 4), ceil(w / 4))``; each ``y`` symbol may use any row of ``y_table`` (however the
    row was chosen: by ``h_s`` alone, or by ``h_s`` and the checkerboard context of the decoded anchors), so the
    bound holds for every such model.
    """
    b, m, h, w = (int(v) for v in y_shape)
    y_rows = least_floors(tables.y_table)
    if tables.z_table is None:
        per_position = int(y_rows.sum()) if len(y_rows) == m else m * int(y_rows.min())
        return b * h * w * per_position
    z_positions = b * (-(-h // 4)) * (-(-w // 4))
    return z_positions * int(least_floors(tables.z_table).sum()) + b * m * h * w * int(y_rows.min())


def _available(num_words: int, slack: int = SLACK_BITS) -> int:
    return (32 * int(num_words) + slack) * FLOOR_SCALE


def check_declared_size(tables: LatentTables, y_shape: tuple[int, int, int, int], num_words: int) -> None:
    """CodingError if ``num_words`` words cannot hold any latents of shape ``y_shape`` (before decoding)."""
    need = latent_floor(tables, y_shape)
    if need > _available(num_words):
        least = max(0, -(-need // FLOOR_SCALE) - SLACK_BITS) // 8
        raise CodingError(f"{4 * num_words} bytes, too few for the declared image size: it needs at least {least}")


def decoding_budget(num_words: int) -> int:
    """The ``floor_budget`` of an :class:`~varinf.compression.coding.ans.AnsStack` decoding ``num_words`` words."""
    return _available(num_words)


def check_encoded(stack: AnsStack) -> None:
    """ValueError if the decoder would refuse this freshly pushed stack (never seen with natural images)."""
    if stack.pushed_floor > _available(len(stack.words()), SLACK_BITS - 1):
        raise ValueError(
            "this image codes to a stream the decoder's size check would refuse (a long run of the rarest latent "
            "values at the bottom of the stack); it cannot be stored"
        )


def max_pixels(codec, num_bytes: int, limit: int = 1 << 16) -> int:
    """The largest square image (side a multiple of ``codec.multiple``, at most ``limit``) in pixels that a
    payload of ``num_bytes`` bytes may declare for ``codec`` (an :class:`~varinf.compression.lossy.model.ImageCodec`)."""
    tables, m, step = codec.tables(), codec.config.latent_channels, codec.multiple
    side = 0
    while side < limit and latent_floor(tables, (1, m, (side + step) // 16, (side + step) // 16)) <= _available(
        num_bytes // 4
    ):
        side += step
    return side * side
