"""The NumPyro ports the benchmarks run (benchmarks/numpyro_posteriors.py) define the same posteriors as varinf's
models: at random points their log joints differ by one constant.

Both log joints are compared in the *constrained* space, as densities of the same latents with respect to the same
base measure (Lebesgue on the constrained coordinates each library samples: a simplex's first K-1 coordinates, an
ordered vector itself, ...): no Jacobian on either side. Each library then adds its own log-Jacobian for its own
unconstrained space, which is its own business; what must agree is the posterior. The points are varinf's
constraining transform of N(0, 1) draws, so they cover the support, not one corner. Needs numpyro (the ``bench``
extra) and ../shared/data.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from varinf.posteriordb import REFERENCE_POSTERIORS

pytest.importorskip("numpyro")
jax = pytest.importorskip("jax")

POINTS = 6


@pytest.fixture(scope="module")
def x64():
    was = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", was)


@pytest.mark.parametrize("name", REFERENCE_POSTERIORS)
def test_port_has_the_same_log_joint_up_to_a_constant(name, shared_data, x64):
    import jax.numpy as jnp
    from numpyro.infer.util import log_density

    from numpyro_posteriors import numpyro_model, ported
    from varinf.posteriordb import load_posterior

    post = load_posterior(name, shared_data / "posteriordb")
    assert ported(post), f"{name} has no NumPyro port"
    model = post.model().double()
    np_model = numpyro_model(post, model)
    g = torch.Generator().manual_seed(0)
    u = torch.randn(POINTS, model.dim, generator=g, dtype=torch.float64)
    with torch.no_grad():
        z, _ = model.constrain(u)
        ours = model.log_joint(**z).numpy()
    theirs = np.array(
        [
            float(log_density(np_model, (), {}, {k: jnp.asarray(v[i].numpy()) for k, v in z.items()})[0])
            for i in range(POINTS)
        ]
    )
    assert np.isfinite(ours).all() and np.isfinite(theirs).all(), (ours, theirs)
    diff = theirs - ours
    spread = np.ptp(ours)
    assert spread > 1e-3, f"{name}: the points do not move the log joint ({ours}); the check would be vacuous"
    assert np.ptp(diff) <= 1e-8 * max(1.0, np.abs(ours).max()), f"{name}: log joints differ by {diff} (not a constant)"
