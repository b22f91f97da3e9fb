"""The plain VAE: shapes, the shared posterior's KL on a vector latent, a few steps raise the ELBO, shipped weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sd.train.model_file import load_model
from vae.distribution import DiagonalGaussianDistribution
from vae.plain.model import PlainVAE, PlainVAEConfig, negative_elbo, reconstruction_floor
from vae.plain.plots import prior_samples, traversal
from vae.plain.train import images

WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "vae-plain.safetensors"


def test_vector_latent_kl_matches_torch_distributions() -> None:
    moments = torch.randn(3, 2 * 5, generator=torch.Generator().manual_seed(0))
    q = DiagonalGaussianDistribution(moments)
    normal = torch.distributions.Normal(q.mean, q.std)
    reference = torch.distributions.kl_divergence(normal, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(q.kl(), reference)
    assert q.sample(torch.Generator().manual_seed(0)).shape == (3, 5)


def test_shapes_and_pictures() -> None:
    model = PlainVAE(PlainVAEConfig(latent_dim=8)).eval()
    terms = negative_elbo(model, torch.rand(2, 3, 64, 64))
    assert terms["loss"].shape == () and terms["kl"] >= 0
    assert prior_samples(model, 4, columns=2).shape == (128, 128, 3)
    assert traversal(model, torch.rand(1, 3, 64, 64), [0, 3], steps=5).shape == (128, 320, 3)


def test_few_steps_raise_the_elbo() -> None:
    torch.manual_seed(0)
    model = PlainVAE(PlainVAEConfig(latent_dim=8)).train()
    x = images(16, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(12):
        loss = negative_elbo(model, x, gen)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.95 * losses[0], losses  # BCE of soft pixel values has a high floor (their entropy)


@pytest.mark.skipif(not WEIGHTS.exists(), reason="weights/vae-plain.safetensors not shipped")
def test_shipped_weights_reach_their_elbo() -> None:
    model = load_model(PlainVAE, PlainVAEConfig, WEIGHTS)
    x = images(100, seed=4242)
    terms = negative_elbo(model, x, torch.Generator().manual_seed(0))
    # docs/educational-models.md's figure: held-out -ELBO 158 nats above the Bernoulli floor
    # (120 reconstruction + 38 KL).
    gap = terms["loss"].item() - reconstruction_floor(x).mean().item()
    assert gap < 200 and 25 < terms["kl"].item() < 60, (gap, terms)
    assert WEIGHTS.stat().st_size < 2 * 2**20
