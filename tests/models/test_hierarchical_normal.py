"""HierarchicalNormal: the O(D) exact marginals equal the dense Gaussian posterior (precision = -Hessian)."""

import pytest
import torch

from varinf.models import HierarchicalNormal


@pytest.mark.parametrize("levels,dim", [(1, 12), (2, 31)])
def test_exact_marginals_match_dense_posterior(levels, dim):
    m = HierarchicalNormal.synthetic(dim, levels=levels, seed=3).double()
    D = m.dim
    u0 = torch.zeros(D, dtype=torch.float64)
    H = torch.autograd.functional.hessian(lambda u: m.log_density(u), u0)
    g = torch.autograd.functional.jacobian(lambda u: m.log_density(u), u0)
    cov = torch.linalg.inv(-H)
    mean = cov @ g  # the log density is quadratic: mode = u0 + (-H)^-1 g
    exact = m.exact_marginals()
    flat_mean = torch.cat([exact[k][0].reshape(-1) for k in [lat.name for lat in m.latents]])
    flat_sd = torch.cat([exact[k][1].reshape(-1) for k in [lat.name for lat in m.latents]])
    assert torch.allclose(flat_mean, mean, atol=1e-10)
    assert torch.allclose(flat_sd, cov.diagonal().sqrt(), atol=1e-10)


def test_sizes_and_errors():
    assert HierarchicalNormal.synthetic(1000).dim == 1000
    assert HierarchicalNormal.synthetic(10_000, levels=2).dim == 1 + 100 + 100 * 98
    with pytest.raises(ValueError, match="same length"):
        HierarchicalNormal(torch.zeros(3), torch.ones(2))
    with pytest.raises(ValueError, match="regions"):
        HierarchicalNormal(torch.zeros(5), torch.ones(5), regions=2)
