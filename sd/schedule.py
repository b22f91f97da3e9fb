"""The training noise schedule of Stable Diffusion 1.x, in one place.

    beta_t = (sqrt(0.00085) + (sqrt(0.012) - sqrt(0.00085)) * t / 999)^2,   t = 0..999  ("scaled linear")
    alpha_bar_t = prod_{s <= t} (1 - beta_s)

x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (add_noise). Computed in float32 as diffusers does,
so the samplers reproduce its timesteps and sigmas bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sd.errors import UserError


@dataclass(frozen=True)
class NoiseSchedule:
    beta_start: float = 0.00085
    beta_end: float = 0.012
    num_train_timesteps: int = 1000
    beta_schedule: str = "scaled_linear"

    @property
    def betas(self) -> torch.Tensor:
        if self.beta_schedule == "scaled_linear":
            start, end = self.beta_start**0.5, self.beta_end**0.5
            return torch.linspace(start, end, self.num_train_timesteps, dtype=torch.float32) ** 2  # (1000,)
        if self.beta_schedule == "linear":
            return torch.linspace(
                self.beta_start, self.beta_end, self.num_train_timesteps, dtype=torch.float32
            )
        raise UserError(
            f"beta_schedule {self.beta_schedule!r} is not supported (use scaled_linear or linear)"
        )

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return torch.cumprod(1.0 - self.betas, dim=0)  # (1000,), from ~0.99915 down to ~0.0047

    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """q(x_t | x_0) under this schedule: see add_noise below."""
        return add_noise(self.alphas_cumprod, original, noise, timesteps)

    def check_alphas_cumprod(self, stored: torch.Tensor, where: str) -> None:
        """Refuse a checkpoint trained with another schedule: sampling it with ours would be silently wrong."""
        ours = self.alphas_cumprod
        if stored.shape != ours.shape or not torch.allclose(stored.float(), ours, rtol=1e-4, atol=1e-6):
            raise UserError(
                f"{where}: alphas_cumprod does not match SD 1.x/2.x's scaled-linear schedule "
                f"(0.00085..0.012, 1000 steps); this checkpoint was trained with another noise schedule"
            )


def add_noise(
    alphas_cumprod: torch.Tensor, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """The forward process q(x_t | x_0): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, one t per batch element.

    The one place this is written: training noises its targets with it, the samplers noise an img2img start
    with it (DDIM keeps DDPM's marginals, Song et al. 2021, sec. 4.1), and a deterministic DDIM step is it
    with x_0 and eps predicted. alphas_cumprod is taken in original's dtype, as diffusers' add_noise does.
    """
    alphas_cumprod = alphas_cumprod.to(device=original.device, dtype=original.dtype)
    timesteps = timesteps.to(original.device)
    shape = (-1,) + (1,) * (original.ndim - 1)  # (B,) -> (B, 1, 1, 1)
    sqrt_alpha_prod = (alphas_cumprod[timesteps] ** 0.5).flatten().reshape(shape)
    sqrt_one_minus_alpha_prod = ((1 - alphas_cumprod[timesteps]) ** 0.5).flatten().reshape(shape)
    return sqrt_alpha_prod * original + sqrt_one_minus_alpha_prod * noise


SD15_SCHEDULE = NoiseSchedule()
