"""The integer hyper-synthesis: equal to the float network up to fixed-point error, and exactly reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from varinf.compression.lossy.integer_net import ACTIVATION_BITS, IntegerNetwork
from varinf.compression.lossy.transforms import hyper_synthesis


def test_integer_network_tracks_the_float_network():
    torch.manual_seed(0)
    net = hyper_synthesis(6, 10).double()
    z = np.random.default_rng(0).integers(-6, 7, size=(2, 6, 3, 5))
    got = IntegerNetwork.from_sequential(net)(z) / 2.0**ACTIVATION_BITS
    want = net(torch.from_numpy(z).double()).detach().numpy()
    assert got.shape == want.shape == (2, 10, 12, 20)
    # error budget: weight rounding (2**-17 relative) and activation rounding (2**-13 absolute) per layer
    assert np.max(np.abs(got - want)) < 5e-3 * (1 + np.abs(want).max())


def test_transposed_and_plain_convolutions_match_torch_exactly_on_integers():
    # with integer weights (multiples of 2**-16 scaled up) the fixed-point result is exact
    torch.manual_seed(1)
    conv = nn.Sequential(nn.ConvTranspose2d(3, 4, 5, 2, 2, 1), nn.ReLU(), nn.Conv2d(4, 2, 3, 1, 1)).double()
    with torch.no_grad():
        for p in conv.parameters():
            p.copy_(torch.round(p * 8) / 8)  # exactly representable in fixed point
    z = np.random.default_rng(1).integers(-3, 4, size=(1, 3, 4, 4))
    got = IntegerNetwork.from_sequential(conv)(z)
    want = conv(torch.from_numpy(z).double()).detach().numpy() * 2**ACTIVATION_BITS
    np.testing.assert_array_equal(got, np.clip(np.round(want), -(2**26), 2**26))


def test_output_is_a_pure_function_of_the_integers():
    torch.manual_seed(2)
    net = IntegerNetwork.from_sequential(hyper_synthesis(4, 4))
    z = np.random.default_rng(2).integers(-50, 50, size=(1, 4, 2, 2))
    a, b = net(z), net(z.copy())
    assert a.dtype == np.int64 and np.array_equal(a, b)


def test_unsupported_layers_are_refused():
    with pytest.raises(ValueError, match="unsupported"):
        IntegerNetwork.from_sequential(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.Tanh()))
