"""The encoder's output read as a diagonal Gaussian posterior q(z|x) = N(mean, diag(std^2))."""

from __future__ import annotations

import torch


class DiagonalGaussianDistribution:
    """Posterior over latents from the encoder's `moments` (B, 2*C, h, w): mean and log-variance.

    A plain VAE's vector latent, moments (B, 2*C), works the same (`vae/plain/` uses this class too).

    Sampling uses the reparameterisation trick, z = mean + std * eps with eps ~ N(0, I), so the
    sample is a differentiable function of the encoder's output (Kingma & Welling 2014).
    """

    def __init__(self, moments: torch.Tensor) -> None:
        self.mean, logvar = moments.chunk(2, dim=1)  # (B, 2C, h, w) -> 2 x (B, C, h, w)
        # Clamped as in ldm so exp() can neither overflow nor collapse to exactly 0.
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mean + std * eps; eps is drawn on the generator's device, as diffusers' `randn_tensor`.

        So one seeded CPU generator gives the same sample here, in diffusers, and on any device.
        """
        device = generator.device if generator is not None else self.mean.device
        eps = torch.randn(self.mean.shape, generator=generator, dtype=self.mean.dtype, device=device)
        return self.mean + self.std * eps.to(self.mean.device)  # (B, C, h, w)

    def mode(self) -> torch.Tensor:
        """The most likely latent, the mean: what inference uses when it wants no noise."""
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) per sample, summed over latent elements: (B,).

        KL = 1/2 * sum(mean^2 + var - 1 - log var), the closed form for Gaussians; the VAE's
        training loss weights it lightly, just enough to keep latents near unit scale.
        """
        dims = list(range(1, self.mean.ndim))  # [1, 2, 3] for SD's (B, C, h, w); [1] for a vector latent
        return 0.5 * torch.sum(self.mean.pow(2) + self.var - 1.0 - self.logvar, dim=dims)
