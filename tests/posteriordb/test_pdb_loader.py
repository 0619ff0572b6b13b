"""Loader (both layouts), data validation, and the vectorized recursions — no shared data needed."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from varinf.posteriordb import (
    MODELS,
    ReferenceDraws,
    compare_to_reference,
    list_posteriors,
    load_posterior,
    stan_element_names,
)
from varinf.posteriordb.hmm import hmm_log_likelihood
from varinf.posteriordb.timeseries import linear_recurrence

EIGHT = {"J": 3, "y": [28.0, 8.0, -3.0], "sigma": [15.0, 10.0, 16.0]}


def _zip_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path.with_name(path.name + ".zip"), "w") as zf:
        zf.writestr(path.name, json.dumps(obj))


def test_full_posteriordb_layout(tmp_path):
    """A miniature checkout of github.com/stan-dev/posteriordb: zipped data and draws, list of chains."""
    db = tmp_path / "posteriordb" / "posterior_database"
    meta = {"name": "es3-eight_schools_centered", "model_name": "eight_schools_centered", "data_name": "es3"}
    meta["reference_posterior_name"] = "es3-eight_schools_centered"
    (db / "posteriors").mkdir(parents=True)
    (db / "posteriors" / "es3-eight_schools_centered.json").write_text(json.dumps(meta))
    (db / "posteriors" / "es3-nothing.json").write_text(json.dumps(meta | {"reference_posterior_name": None}))
    _zip_json(db / "data" / "data" / "es3.json", EIGHT)
    (db / "models" / "stan").mkdir(parents=True)
    (db / "models" / "stan" / "eight_schools_centered.stan").write_text("// stan code")
    chains = [
        {"theta[1]": [1.0, 2.0], "theta[2]": [0.0, 1.0], "theta[3]": [3.0, 3.0], "mu": [1.0, 1.5], "tau": [2.0, 1.0]}
    ]
    chains.append({k: [v + 1 for v in vals] for k, vals in chains[0].items()})
    _zip_json(db / "reference_posteriors" / "draws" / "draws" / "es3-eight_schools_centered.json", chains)

    root = tmp_path / "posteriordb"
    assert list_posteriors(root) == ["es3-eight_schools_centered", "es3-nothing"]
    assert list_posteriors(root, with_reference=True) == ["es3-eight_schools_centered"]
    post = load_posterior("es3-eight_schools_centered", root)
    assert post.stan_code == "// stan code" and post.data == EIGHT
    assert post.reference.draws.shape == (2, 2, 5)
    assert post.reference.names == ("theta[1]", "theta[2]", "theta[3]", "mu", "tau")
    np.testing.assert_array_equal(post.reference.draws[1, :, 0], [2.0, 3.0])
    model = post.model()
    assert model.reference_names == list(post.reference.names) and model.name == post.name
    with pytest.raises(FileNotFoundError, match="available: es3"):
        load_posterior("nope", root)


def test_staged_layout_and_missing_reference(tmp_path):
    d = tmp_path / "es-eight_schools_noncentered"
    d.mkdir()
    (d / "posterior.json").write_text(json.dumps({"model_name": "eight_schools_noncentered", "data_name": "es"}))
    (d / "data.json").write_text(json.dumps(EIGHT))
    post = load_posterior(d.name, tmp_path)
    assert post.reference is None and post.stan_code is None
    assert list_posteriors(tmp_path, with_reference=False) == [d.name]
    np.savez(d / "reference_draws.npz", draws=np.zeros((2, 3, 4)), names=np.array(["a", "b", "c", "d", "e"]))
    with pytest.raises(ValueError, match="draws must be"):
        load_posterior(d.name, tmp_path)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"J": 3, "y": [1.0, 2.0], "sigma": [1.0, 1.0, 1.0]}, "'y' has 2 entries, expected 3"),
        ({"J": 3, "y": [1.0, 2.0, 3.0]}, "'sigma' is missing"),
        ({"J": 3, "y": [1.0, float("nan"), 3.0], "sigma": [1.0, 1.0, 1.0]}, "NaN"),
        ({"J": 3, "y": [1.0, 2.0, 3.0], "sigma": [1.0, -1.0, 1.0]}, "must be positive"),
        ({"J": 2.5, "y": [1.0], "sigma": [1.0]}, "must be an integer"),
    ],
)
def test_bad_data_names_the_problem(data, match):
    with pytest.raises(ValueError, match=match):
        MODELS["eight_schools_centered"].from_data(data)


def test_linear_recurrence_matches_loop():
    g = torch.Generator().manual_seed(0)
    for T in (1, 2, 7, 64, 200):
        b, a = torch.rand(3, T, generator=g, dtype=torch.float64), torch.randn(3, T, generator=g, dtype=torch.float64)
        x, prev = [], torch.zeros(3, dtype=torch.float64)
        for t in range(T):
            prev = b[:, t] * prev + a[:, t]
            x.append(prev)
        torch.testing.assert_close(linear_recurrence(b, a), torch.stack(x, -1))


def test_hmm_tree_reduction_matches_forward_loop():
    g = torch.Generator().manual_seed(0)
    for N in (1, 2, 5, 16, 33):
        log_trans = torch.log_softmax(torch.randn(4, 3, 3, generator=g, dtype=torch.float64), -1)
        emit = torch.randn(4, N, 3, generator=g, dtype=torch.float64)
        gamma = emit[:, 0]
        for t in range(1, N):
            gamma = torch.logsumexp(gamma[..., :, None] + log_trans, dim=-2) + emit[:, t]
        torch.testing.assert_close(hmm_log_likelihood(log_trans, emit), torch.logsumexp(gamma, -1))


def test_stan_names_and_comparison():
    assert stan_element_names("b", (3,)) == ["b[1]", "b[2]", "b[3]"]
    assert stan_element_names("m", (2, 3))[:3] == ["m[1,1]", "m[2,1]", "m[1,2]"]
    ref = ReferenceDraws(("a", "b"), np.stack([np.random.default_rng(0).normal([0, 5], [1, 2], (4000, 2))]))
    draws = np.random.default_rng(1).normal([0.5, 5.0], [1.0, 1.0], (4000, 2))
    c = compare_to_reference(draws, ref, ["a", "b"])
    assert c.worst() == "a" and 0.4 < c.max_mean_error < 0.6
    assert 0.4 < c.min_sd_ratio < 0.6 and 0.9 < c.max_sd_ratio < 1.1
    w = np.ones(4000) / 4000
    np.testing.assert_allclose(compare_to_reference(draws, ref, ["a", "b"], weights=w).mean_error, c.mean_error)
    with pytest.raises(ValueError, match="different order"):
        compare_to_reference(draws, ref, ["b", "a"])


def test_build_model_rejects_unknown_and_models_are_float64():
    model = MODELS["eight_schools_noncentered"].from_data(EIGHT)
    assert model.y.dtype == torch.float64 and model.dim == 5
    assert model.reference_names == ["theta[1]", "theta[2]", "theta[3]", "mu", "tau"]
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_posterior("no-such-posterior", "/nonexistent/posteriordb").model()
