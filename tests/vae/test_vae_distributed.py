"""Data-parallel training equals one process: in-process (shards' gradients average to the full-batch
gradient under the same noise) and end to end with ``torchrun --nproc_per_node=2`` (gloo, CPU)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

from varinf.cli.main import main
from varinf.objectives import ELBO, IWAE
from varinf.vae import VAE, Shard, VAEConfig, World, load_vae

from .conftest import TINY, tiny_images


@pytest.mark.parametrize("name", ["mlp", "two_layer"])
@pytest.mark.parametrize("objective", [ELBO(num_particles=2), IWAE(num_particles=4, gradient="dreg")])
def test_shard_gradients_average_to_full_batch(name, objective):
    torch.manual_seed(0)
    vae = VAE.from_config(TINY[name])
    x = vae.likelihood.prepare(tiny_images(8), torch.Generator().manual_seed(0))

    def grad(shard: Shard) -> torch.Tensor:
        vae.zero_grad()
        torch.manual_seed(5)  # every process starts the step from the same RNG state
        vae(shard.rows(x), objective, shard).loss.backward()
        return torch.cat([p.grad.flatten() for p in vae.parameters()])

    full = grad(Shard.of(World(0, 1), 8))
    halves = [grad(Shard.of(World(r, 2), 8)) for r in range(2)]
    torch.testing.assert_close((halves[0] + halves[1]) / 2, full, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(halves[0], halves[1])
    with pytest.raises(ValueError, match="divisible"):
        Shard.of(World(0, 3), 8)


def test_torchrun_two_processes_match_one(tmp_path):
    images = tiny_images(64)
    data = tmp_path / "images"
    data.mkdir()
    for i in range(len(images)):
        Image.fromarray(images[i, 0].numpy()).save(data / f"{i:03d}.png")
    args = ["--data", str(data), "--latents", "2", "--hidden", "8", "--objective", "iwae", "--k", "3"]
    args += ["--gradient", "dreg", "--batch-size", "8", "--epochs", "2", "--valid-k", "5"]
    assert main(["vae", "train", "-o", str(tmp_path / "one"), *args]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "varinf"]
    done = subprocess.run(
        [*cmd, "vae", "train", "-o", str(tmp_path / "two"), *args], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = load_vae(tmp_path / "one").state_dict(), load_vae(tmp_path / "two").state_dict()
    init = VAE.from_config(VAEConfig(data_shape=(1, 4, 4), latents=(2,), hidden=((8,),))).state_dict()
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-5)
    assert any(not torch.allclose(one[k], init[k]) for k in one)  # it trained
