"""A plain convolutional VAE (Kingma & Welling 2014, "Auto-Encoding Variational Bayes").

    image x (B, 3, 64, 64) -> encoder -> q(z|x) = N(mu, diag(sigma^2)), z in R^32
    z = mu + sigma * eps, eps ~ N(0, I)          (the reparameterisation trick: z is differentiable in mu, sigma)
    z -> decoder -> p(x|z): a Bernoulli probability per pixel and channel

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || N(0, I))  <=  log p(x)

Training maximises the ELBO: the first term asks for good reconstructions, the second keeps every q(z|x) close
to the prior N(0, I), so that decoding a z drawn from the prior gives a plausible image.

Stable Diffusion's autoencoder (`vae/autoencoder.py`) is the same model with three changes, all to serve the
diffusion model rather than sampling: its latent is a spatial grid (4 x H/8 x W/8) instead of a vector; its KL
weight is tiny (1e-6), so it is nearly a plain autoencoder whose prior samples are meaningless (the diffusion
model learns the latents' distribution instead); and it adds perceptual and adversarial losses for sharp
details. Both read the encoder's output with the same `DiagonalGaussianDistribution` (sample, KL).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vae.distribution import DiagonalGaussianDistribution


@dataclass(frozen=True)
class PlainVAEConfig:
    latent_dim: int = 32
    channels: tuple[int, ...] = (32, 32, 64, 64)  # each halves the resolution: 64 -> 32 -> 16 -> 8 -> 4
    image_size: int = 64


class PlainVAE(nn.Module):
    def __init__(self, config: PlainVAEConfig = PlainVAEConfig()) -> None:
        super().__init__()
        self.config = config
        chans = config.channels
        self.side = config.image_size // 2 ** len(chans)  # 4
        flat = chans[-1] * self.side**2  # 64 * 4 * 4 = 1024
        layers: list[nn.Module] = []
        for c_in, c_out in zip((3, *chans[:-1]), chans, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.to_moments = nn.Linear(flat, 2 * config.latent_dim)  # mu and log sigma^2
        self.from_latent = nn.Linear(config.latent_dim, flat)
        layers = []
        for c_in, c_out in zip(chans[::-1], (*chans[-2::-1], 3), strict=True):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.decoder = nn.Sequential(*layers[:-1])  # no activation after the last: it outputs logits

    def encode(self, x: torch.Tensor) -> DiagonalGaussianDistribution:
        """q(z|x) for images in [0, 1]."""
        return DiagonalGaussianDistribution(
            self.to_moments(self.encoder(x))
        )  # (B, 3, 64, 64) -> (B, 1024) -> (B, 2*32)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        h = self.from_latent(z).view(len(z), self.config.channels[-1], self.side, self.side)  # (B, 32) -> (B, 64, 4, 4)
        return self.decoder(h)  # (B, 64, 4, 4) -> (B, 3, 64, 64)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's mean image in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, DiagonalGaussianDistribution]:
        posterior = self.encode(x)
        z = posterior.sample(generator)  # z = mu + sigma * eps
        return self.decode_logits(z), posterior


def negative_elbo(
    model: PlainVAE, x: torch.Tensor, generator: torch.Generator | None = None, beta: float = 1.0
) -> dict:
    """-ELBO per image in nats, as {"loss", "reconstruction", "kl"}; beta != 1 weights the KL (beta-VAE).

    -log p(x|z) is the binary cross-entropy of the decoder's Bernoulli probabilities against the pixel values,
    summed over the 3 * 64 * 64 values (one Monte Carlo sample of z per image, as in the paper).
    """
    logits, posterior = model(x, generator)  # (B, 3, 64, 64), q(z|x)
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3)).mean()
    kl = posterior.kl().mean()  # closed form, summed over the 32 latent dimensions
    return {"loss": reconstruction + beta * kl, "reconstruction": reconstruction, "kl": kl}


def reconstruction_floor(x: torch.Tensor) -> torch.Tensor:
    """The smallest possible -log p(x|z) per image: the entropy of the pixel values read as Bernoulli probabilities.

    Pixels are not 0/1, so even a perfect decoder pays sum H(x_i) nats; the ELBO's gap to this floor is what the
    model can still improve.
    """
    p = x.clamp(1e-6, 1 - 1e-6)
    return -(p * p.log() + (1 - p) * (1 - p).log()).sum((1, 2, 3))  # (B,)
