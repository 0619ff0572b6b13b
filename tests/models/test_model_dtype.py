"""``Model.check`` refuses a log joint that is not real floating point, naming the dtype."""

from __future__ import annotations

import pytest
import torch

from varinf import Latent, Model, ModelError


@pytest.mark.parametrize(
    ("log_joint", "needles"),
    [
        (lambda mu: (mu * 0).long(), ["torch.int64", "real floating point"]),
        (lambda mu: mu > 0, ["torch.bool", "real floating point"]),
        (lambda mu: -(mu**2) * (1 + 0j), ["torch.complex", "real part"]),
    ],
    ids=["int64", "bool", "complex"],
)
def test_non_floating_log_joint_is_refused(log_joint, needles):
    model = Model([Latent("mu")], log_joint, name="m")
    with pytest.raises(ModelError) as err:
        model.check()
    assert all(n in str(err.value) for n in needles) and str(err.value).startswith("m: log_joint returned")


def test_float64_log_joint_passes():
    Model([Latent("mu")], lambda mu: -(mu.double() ** 2)).check()
    assert torch.get_default_dtype() == torch.float32
