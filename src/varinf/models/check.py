r"""What is wrong with a model? Evaluate it at a couple of points and say so in one line.

:func:`check_model` (``Model.check``, run by every fit before any work) evaluates :math:`\log p(x, T(u))` at
``u`` (default: zeros and one U(-1, 1) point) and raises a :class:`~varinf.errors.ModelError` naming

- the function that raised (``log_prior``, ``log_likelihood``, ``log_joint``), with the shapes it was called with;
- a return value of the wrong type, dtype or shape (a likelihood summed over its rows, a log joint summed over
  the draws), with the shape expected;
- where a value is not finite: the prior, the first data row whose likelihood is not finite (with its values),
  or the latents whose gradient is not finite (with their supports and values).

Imported by :mod:`.model` only (the model's methods call it); it never imports the model class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..errors import ModelError
from .chunking import rows_per_chunk

if TYPE_CHECKING:
    from .model import Model

__all__ = ["check_model", "likelihood_shape_message"]


def check_model(model: Model, u: Tensor | None = None) -> None:
    """Evaluate ``model`` at ``u`` ``(S, D)`` (see the module docstring); returns quietly when all is well."""
    u = _points(model, u)
    z, ladj = model.constrain(u)
    for zv in z.values():
        zv.retain_grad()
    if model.has_plate:
        _check_plate(model, {k: v.detach() for k, v in z.items()}, u.shape[0])
    lj = _evaluate(model, z, u)
    _check_returned(model, lj, u)
    total = lj + ladj
    if not torch.isfinite(total).all():
        _blame_non_finite(model, z, total)


def _points(model: Model, u: Tensor | None) -> Tensor:
    p = model._float()
    dtype = p.dtype if p is not None else torch.get_default_dtype()
    if u is None:
        g = torch.Generator().manual_seed(0)
        u = torch.stack([torch.zeros(model.dim), torch.rand(model.dim, generator=g) * 2 - 1]).to(dtype)
    return u.detach().reshape(-1, model.dim).clone().requires_grad_(True)


def _what(model: Model) -> str:
    return "log_prior + log_likelihood" if model.has_plate else "log_joint"


def _evaluate(model: Model, z: dict[str, Tensor], u: Tensor) -> Tensor:
    """The log joint, with a failure of the user's code said in one line (the original traceback kept)."""
    try:
        return model.log_joint(**z)
    except ModelError:
        raise
    except Exception as e:
        shapes = {k: tuple(v.shape) for k, v in z.items()}
        raise ModelError(
            f"{model.name}: {_what(model)} raised {type(e).__name__}: {e}\n  called with latents of shapes "
            f"{shapes} (a leading sample dimension of {u.shape[0]} draws, then each latent's shape)"
        ) from e


def _check_returned(model: Model, lj, u: Tensor) -> None:
    """A real floating tensor with one number per draw."""
    if not isinstance(lj, Tensor):
        raise ModelError(f"{model.name}: log_joint must return a torch.Tensor, got {type(lj).__name__}")
    if not lj.is_floating_point():  # int64 cannot carry a gradient; complex is not a log density
        raise ModelError(
            f"{model.name}: log_joint returned a {lj.dtype} tensor; it must be real floating point "
            f"(the latents' dtype, {u.dtype}): compute it with float operations"
            + (", and return its real part" if lj.is_complex() else "")
        )
    if lj.shape != u.shape[:-1]:
        hint = (
            " It looks like it sums over the sample dimension too: reduce only the data and latent dimensions."
            if lj.dim() == 0
            else " Sum over the data dimension(s) so each draw gives one number."
        )
        raise ModelError(
            f"{model.name}: log_joint returned shape {tuple(lj.shape)} for a batch of {u.shape[0]} draws; "
            f"expected {tuple(u.shape[:-1])}.{hint} (Or pass vectorized=False.)"
        )


def _blame_non_finite(model: Model, z: dict[str, Tensor], total: Tensor) -> None:
    """Raise for the first draw whose log density is not finite: the prior or a data row, else the latents
    whose gradient is not finite."""
    bad_row = int((~torch.isfinite(total)).nonzero()[0, 0])
    if model.has_plate:
        _explain_plate(model, {k: v[bad_row : bad_row + 1].detach() for k, v in z.items()})
    if total[bad_row].requires_grad and torch.isnan(total[bad_row]):
        total[bad_row].backward()
    culprits = [b.latent for b in model._blocks
                if z[b.latent.name].grad is not None and not torch.isfinite(z[b.latent.name].grad[bad_row]).all()]  # fmt: skip
    values = {k: v[bad_row].detach() for k, v in z.items()}

    def fmt(lat):
        return f"{lat.name!r} (support {lat.support!r}, value {_short(values[lat.name])})"

    where = (
        "the gradient is not finite with respect to " + ", ".join(fmt(c) for c in culprits)
        if culprits
        else "latent values: " + ", ".join(fmt(b.latent) for b in model._blocks)
    )
    raise ModelError(
        f"{model.name}: log joint is {total[bad_row].item()} at an initial point; {where}. Check that each "
        "latent's declared support matches how the log joint uses it (e.g. a scale needs support='positive'), "
        "and that the data have no NaN."
    )


def _check_plate(model: Model, z: dict[str, Tensor], S: int) -> None:
    """Shapes of ``log_prior`` and ``log_likelihood`` on the first rows, with errors naming the function."""
    _check_prior(model, z, S)
    b = min(model.plate.size, 4)
    rows = model.plate.rows(slice(0, b))
    row_shapes = {k: tuple(v.shape) for k, v in rows.items()}
    shapes = {k: tuple(v.shape[1:]) for k, v in z.items()}
    if not model._vectorized and model._lik_fn is not None:
        one = {k: v[0] for k, v in z.items()}
        try:
            ll = model._lik_fn(**one, data=rows)
        except Exception as e:
            raise ModelError(
                f"{model.name}: log_likelihood raised {type(e).__name__}: {e} (called for one draw, latents of "
                f"shapes {shapes}, with data rows {row_shapes})"
            ) from e
        if not isinstance(ll, Tensor) or tuple(ll.shape) != (b,):
            got = tuple(ll.shape) if isinstance(ll, Tensor) else type(ll).__name__
            raise ModelError(likelihood_shape_message(model.name, got, (), b, False))
    try:
        ll = model.log_likelihood(rows, **z)
    except Exception as e:
        raise ModelError(f"{model.name}: log_likelihood raised {type(e).__name__}: {e} (latents of shapes "
                         f"{ {k: tuple(v.shape) for k, v in z.items()} }, data rows {row_shapes})") from e  # fmt: skip
    if not isinstance(ll, Tensor) or tuple(ll.shape) != (S, b):
        got = tuple(ll.shape) if isinstance(ll, Tensor) else type(ll).__name__
        raise ModelError(likelihood_shape_message(model.name, got, (S,), b, model._vectorized))


def _check_prior(model: Model, z: dict[str, Tensor], S: int) -> None:
    shapes = {k: tuple(v.shape[1:]) for k, v in z.items()}
    try:
        lp = model.log_prior(**z)
    except Exception as e:
        raise ModelError(f"{model.name}: log_prior raised {type(e).__name__}: {e} (latents of shapes {shapes}"
                         f"{'' if model._vectorized else ', one draw at a time'})") from e  # fmt: skip
    if not isinstance(lp, Tensor) or tuple(lp.shape) != (S,):
        got = tuple(lp.shape) if isinstance(lp, Tensor) else type(lp).__name__
        per = f"shape {got[1:]} per draw" if model._vectorized is False and isinstance(got, tuple) else f"shape {got}"
        raise ModelError(
            f"{model.name}: log_prior returned {per} for {S} draws; expected one number per draw "
            f"({'a scalar from one-draw code' if not model._vectorized else f'shape ({S},)'}): sum over the "
            "latents' own dimensions"
        )


def _explain_plate(model: Model, z: dict[str, Tensor]) -> None:
    """For one non-finite draw: blame the prior, or the first data row whose likelihood is not finite."""
    point = ", ".join(f"{k}={_short(v[0])}" for k, v in z.items())
    with torch.no_grad():
        lp = model.log_prior(**z)
        if not torch.isfinite(lp).all():
            raise ModelError(
                f"{model.name}: log_prior is {lp.item()} at an initial point ({point}); check that each latent's "
                "declared support matches how the prior uses it"
            )
        per = rows_per_chunk(1, 8, model.max_memory)
        for start in range(0, model.plate.size, per):
            rows = model.plate.rows(slice(start, start + per))
            ll = model.log_likelihood(rows, **z)[0]
            bad = (~torch.isfinite(ll)).nonzero()
            if len(bad):
                i = int(bad[0, 0])
                shown = ", ".join(f"{k}={_short(v[i])}" for k, v in rows.items())
                raise ModelError(
                    f"{model.name}: log_likelihood is {ll[i].item()} at data row {model.plate.offset + start + i} "
                    f"({shown}) at an initial point ({point}); check the data against the likelihood's support "
                    "and the latents' supports"
                )


def likelihood_shape_message(name: str, got, S: tuple, b: int, vectorized: bool) -> str:
    """The error for a ``log_likelihood`` of the wrong shape (``S`` the draws' shape, ``b`` the rows)."""
    want = (*S, b)
    how = f"{'(*S, B)' if vectorized else '(B,) for one draw'}"
    hint = (
        " It sums over the observations: return one value per row instead (varinf sums, scales and subsamples)."
        if got in ((), S)
        else ""
    )
    return (
        f"{name}: log_likelihood returned shape {got} for {f'{S[0]} draws and ' if S else ''}a batch of {b} rows; "
        f"expected {want}, i.e. {how}.{hint}"
    )


def _short(v: Tensor) -> str:
    flat = v.flatten()
    s = ", ".join(f"{x:.3g}" for x in flat[:4].tolist())
    return f"[{s}{', ...' if flat.numel() > 4 else ''}]" if v.dim() else f"{v.item():.3g}"
