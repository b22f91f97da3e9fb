"""ldm's AutoencoderKL: the VAE that moves Stable Diffusion between pixels and latents.

Images in [-1, 1] of shape (B, 3, H, W) become latents (B, 4, H/8, W/8) for SD 1.x. The model
works on unscaled latents; the pipeline multiplies by `config.scaling_factor` after encoding and
divides before decoding, so diffusion sees latents of roughly unit variance.
"""

from __future__ import annotations

import torch
from torch import nn

from vae.config import SD15_VAE, VAEConfig
from vae.decoder import Decoder
from vae.distribution import DiagonalGaussianDistribution
from vae.encoder import Encoder


class AutoencoderKL(nn.Module):
    """Encoder + 1x1 `quant_conv` -> Gaussian posterior; 1x1 `post_quant_conv` + decoder -> image.

    Attribute names are the original checkpoint's keys without `first_stage_model.`, so an
    original SD file loads with a strict `load_state_dict`. There are no buffers: the model can be
    built on the meta device and filled with `load_state_dict(..., assign=True)`.
    """

    def __init__(self, config: VAEConfig = SD15_VAE) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quant_conv = nn.Conv2d(2 * config.z_channels, 2 * config.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(config.embed_dim, config.z_channels, 1)

    def encode(self, x: torch.Tensor) -> DiagonalGaussianDistribution:
        """Posterior q(z|x) for images x in [-1, 1]."""
        moments = self.quant_conv(self.encoder(x))  # (B, 3, 512, 512) -> (B, 8, 64, 64)
        return DiagonalGaussianDistribution(moments)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Image (roughly in [-1, 1]) from an unscaled latent."""
        return self.decoder(self.post_quant_conv(z))  # (B, 4, 64, 64) -> (B, 3, 512, 512)

    def forward(
        self, x: torch.Tensor, sample_posterior: bool = False, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, DiagonalGaussianDistribution]:
        """Reconstruction and posterior, as ldm returns them: training needs both (KL term)."""
        posterior = self.encode(x)
        z = posterior.sample(generator) if sample_posterior else posterior.mode()  # (B, 4, H/8, W/8)
        return self.decode(z), posterior  # (B, 3, H, W)
