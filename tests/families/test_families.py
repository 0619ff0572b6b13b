"""Every family through the same invariants (zuko's test style): shapes, gradients reach every
parameter, rsample/log_prob consistency, and normalization of the density."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from varinf.families import AmortizedNormal, Flow, FullRank, LowRank, MeanField, Preconditioned, make_family

D = 2


def _families():
    return {
        "meanfield": lambda: MeanField(D, loc=torch.tensor([0.3, -0.2]), init_scale=0.7),
        "fullrank": lambda: FullRank(D, init_scale=0.7),
        "lowrank": lambda: LowRank(D, rank=1, init_scale=0.7),
        "flow_nsf": lambda: Flow(D, kind="nsf", transforms=2, hidden=(16,)),
        "flow_maf": lambda: Flow(D, kind="maf", transforms=2, hidden=(16,), loc=torch.tensor([1.0, 0.0])),
        "precond_diag": lambda: Preconditioned(
            MeanField(D, init_scale=1.0), torch.tensor([0.5, -1.0]), torch.tensor([0.5, 2.0])
        ),
        "precond_tril": lambda: Preconditioned(
            FullRank(D, init_scale=1.0), torch.tensor([0.5, -1.0]), torch.tensor([[0.8, 0.0], [-0.6, 1.2]])
        ),
        "precond_flow": lambda: Preconditioned(
            Flow(D, kind="maf", transforms=1, hidden=(8,)), torch.zeros(D), torch.tensor([1.5, 0.7])
        ),
    }


@pytest.fixture(params=sorted(_families()))
def family(request):
    torch.manual_seed(0)
    fam = _families()[request.param]()
    with torch.no_grad():  # move off the symmetric initialisation so every parameter matters
        for p in fam.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for m in fam.modules():
            if isinstance(m, FullRank):
                m.off_diag.add_(0.3)
    return fam


def test_shapes(family):
    q = family()
    assert q.event_shape == (D,) and q.batch_shape == ()
    z = q.rsample((5, 3))
    assert z.shape == (5, 3, D)
    assert q.log_prob(z).shape == (5, 3)


def test_gradients_reach_every_parameter(family):
    q = family()
    z = q.rsample((64,))
    (z.pow(2).sum() + q.log_prob(z).sum()).backward()
    for name, p in family.named_parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name
        assert p.grad.abs().sum() > 0, f"{name} receives a zero gradient"


def test_density_normalizes(family):
    # integrate exp(log q) over a grid in 2-D
    n, lim = 241, 8.0
    g = torch.linspace(-lim, lim, n)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    pts = torch.stack([xx, yy], -1).reshape(-1, D)
    with torch.no_grad():
        mass = family().log_prob(pts).exp().sum() * (2 * lim / (n - 1)) ** 2
    assert abs(mass.item() - 1) < 5e-3


def test_samples_match_density(family):
    # E_q[f] by sampling vs by quadrature of exp(log q), for f(z) = z and z^2
    torch.manual_seed(1)
    with torch.no_grad():
        q = family()
        z = q.sample((100_000,))
        n, lim = 241, 8.0
        g = torch.linspace(-lim, lim, n)
        xx, yy = torch.meshgrid(g, g, indexing="ij")
        pts = torch.stack([xx, yy], -1).reshape(-1, D)
        w = q.log_prob(pts).exp() * (2 * lim / (n - 1)) ** 2
        for f in (lambda x: x, lambda x: x**2):
            mc, quad = f(z).mean(0), (w[:, None] * f(pts)).sum(0)
            se = f(z).std(0) / math.sqrt(z.shape[0])
            assert bool(((mc - quad).abs() < 5 * se + 1e-3).all()), (mc, quad)


def test_gaussian_entropy_matches_monte_carlo():
    torch.manual_seed(2)
    for fam in (MeanField(3, init_scale=0.5), FullRank(3), LowRank(3, rank=2)):
        with torch.no_grad():
            for p in fam.parameters():
                p.add_(0.2 * torch.randn_like(p))
            q = fam()
            z = q.sample((200_000,))
            mc = -q.log_prob(z).mean()
        assert abs(mc - q.entropy()) < 0.02


def test_amortized_batch_shape():
    net = nn.Linear(4, 6)
    fam = AmortizedNormal(net, 3)
    q = fam(torch.randn(10, 4))
    assert q.batch_shape == (10,) and q.event_shape == (3,)
    assert q.rsample((5,)).shape == (5, 10, 3)
    with pytest.raises(ValueError, match="2\\*dim"):
        AmortizedNormal(nn.Linear(4, 5), 3)(torch.randn(2, 4))
    with pytest.raises(ValueError, match="conditioning"):
        fam()


def test_make_family():
    assert isinstance(make_family("mean_field", 3), MeanField)
    assert isinstance(make_family("fullrank", 3), FullRank)
    with pytest.raises(ValueError, match="unknown family"):
        make_family("gaussian", 3)
