"""``LeanAdam`` takes the same steps as ``torch.optim.Adam``."""

from __future__ import annotations

import pytest
import torch

from varinf.optim import LeanAdam


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lean_adam_matches_torch_adam(dtype, fused):
    g = torch.Generator().manual_seed(0)
    init = [torch.randn(5, generator=g, dtype=dtype), torch.randn(3, 2, generator=g, dtype=dtype)]
    ours = [p.clone().requires_grad_(True) for p in init]
    ref = [p.clone().requires_grad_(True) for p in init]
    lean, adam = LeanAdam(ours, lr=0.05), torch.optim.Adam(ref, lr=0.05)
    lean._fused = lean._fused and fused  # the fused kernel, or the torch._foreach_* ops
    for _ in range(25):
        grads = [torch.randn(p.shape, generator=g, dtype=dtype) for p in init]
        for opt, params in ((lean, ours), (adam, ref)):
            opt.zero_grad(set_to_none=True)
            for p, gr in zip(params, grads):
                p.grad = gr.clone()
            opt.step()
    assert lean.t == 25
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


def test_lean_adam_step_without_some_gradient_moves_the_others_and_counts_once():
    """A parameter without a gradient stays put; the step count is shared, so the next fused step's bias
    correction is the one the ``torch._foreach_*`` path would use."""
    a, b = torch.ones(3, requires_grad=True), torch.ones(2, requires_grad=True)
    lean = LeanAdam([a, b], lr=0.1)
    a.grad = torch.ones(3)
    lean.step()
    assert lean.t == 1 and torch.equal(b, torch.ones(2)) and bool((a < 1).all())
    assert all(float(s) == 1.0 for s in lean.steps)
    twin_a, twin_b = a.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)
    twin = LeanAdam([twin_a, twin_b], lr=0.1)
    twin.exp_avgs = [m.clone() for m in lean.exp_avgs]
    twin.exp_avg_sqs = [v.clone() for v in lean.exp_avg_sqs]
    twin.t, twin._fused = 1, False
    for opt, (p, q) in ((lean, (a, b)), (twin, (twin_a, twin_b))):
        p.grad, q.grad = torch.full((3,), 0.5), torch.full((2,), -2.0)
        opt.step()
    torch.testing.assert_close(a, twin_a)
    torch.testing.assert_close(b, twin_b)
