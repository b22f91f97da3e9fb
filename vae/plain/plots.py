"""The three pictures a VAE is judged by: reconstructions, samples from the prior, and latent traversals."""

from __future__ import annotations

import numpy as np
import torch

from vae.plain.model import PlainVAE


def to_pixels(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()  # (N, 3, 64, 64) -> (N, 64, 64, 3)


def tile(images: np.ndarray, columns: int) -> np.ndarray:
    """(N, h, w, 3) -> one (rows * h, columns * w, 3) grid, row by row."""
    rows = [np.concatenate(list(images[i : i + columns]), axis=1) for i in range(0, len(images), columns)]
    return np.concatenate(rows, axis=0)


@torch.no_grad()
def reconstructions(model: PlainVAE, x: torch.Tensor) -> np.ndarray:
    """Originals (top row) over reconstructions from the posterior mean (bottom row)."""
    recon = model.decode(model.encode(x).mode())
    return tile(np.concatenate([to_pixels(x), to_pixels(recon)]), len(x))


@torch.no_grad()
def prior_samples(model: PlainVAE, n: int = 32, seed: int = 0, columns: int = 8) -> np.ndarray:
    """Decode z ~ N(0, I): what the model thinks an image is, with no input at all."""
    z = torch.randn(n, model.config.latent_dim, generator=torch.Generator().manual_seed(seed))  # (n, 32)
    return tile(to_pixels(model.decode(z)), columns)


@torch.no_grad()
def most_used_dimensions(model: PlainVAE, x: torch.Tensor, k: int) -> list[int]:
    """The k latent dimensions with the largest average KL: the ones the model actually uses."""
    q = model.encode(x)
    kl = 0.5 * (q.mean.pow(2) + q.var - 1 - q.logvar).mean(0)  # (32,) per dimension
    return kl.argsort(descending=True)[:k].tolist()


@torch.no_grad()
def traversal(model: PlainVAE, x: torch.Tensor, dims: list[int], steps: int = 9, span: float = 3.0) -> np.ndarray:
    """One row per latent dimension: start from x's posterior mean and sweep that dimension over [-span, span]."""
    z = model.encode(x[:1]).mode()  # (1, 32)
    values = torch.linspace(-span, span, steps)
    rows = []
    for d in dims:
        zs = z.repeat(steps, 1)  # (steps, 32)
        zs[:, d] = values
        rows.append(to_pixels(model.decode(zs)))
    return tile(np.concatenate(rows), steps)
