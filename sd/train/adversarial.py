"""A UFOGen-style adversarial fine-tune for one-step sampling (Xu et al. 2023): the losses of one iteration.

The generator is the consistency student, read as a map from x_t straight to a clean latent:

    x_t    = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps               (t = 999 for 1 step, or a grid t)
    x0_hat = f_theta(x_t, t) = c_skip x_t + c_out x0_theta(x_t, t)  (sd/train/consistency.py)
    fake   = sqrt(abar_t') x0_hat + sqrt(1 - abar_t') eps'          real = sqrt(abar_t') x0 + sqrt(1 - abar_t') eps'

with t' < t and the same eps' for both, so the two differ only in the clean latent. A discriminator D(x, t',
text) tells real from fake; the non-saturating GAN losses with UFOGen's "dual objective":

    L_D = softplus(-D(real)) + softplus(D(fake))
    L_G = w_adv softplus(-D(fake)) + w_rec || x0_hat - target ||^2

Noising both to t' is what makes this stable (diffusion-GAN): the two distributions overlap there, so D
cannot separate them perfectly and its gradient stays informative. The reconstruction term keeps x0_hat in
place; the adversarial term sharpens what a single step would otherwise blur towards the mean. UFOGen's
target is the data x0 its x_t was noised from. After a solved-trajectory stage 1 (trajectory.py) the target
can instead be the teacher's ODE end z_end, x_t then a stored state of that ODE: the reconstruction then
holds the student on the map it learnt rather than pulling one step towards data (which measured worse).
D starts from the teacher's UNet encoder (time embedding, down blocks and middle block, which already read
t' and the text through cross-attention) with a new 1x1 head that scores every position of the lowest level.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from sd.schedule import add_noise
from sd.train.consistency import consistency_function
from unet.model import UNetModel
from unet.timestep import timestep_embedding


class Discriminator(nn.Module):
    """The teacher UNet's encoder half (copied: it trains) and a patch head: (B, 4, h, w) -> (B, h/2^L * w/2^L)."""

    def __init__(self, teacher: UNetModel) -> None:
        super().__init__()
        self.model_channels = teacher.config.model_channels
        self.time_embed = copy.deepcopy(teacher.time_embed)
        self.input_blocks = copy.deepcopy(teacher.input_blocks)
        self.middle_block = copy.deepcopy(teacher.middle_block)
        width = teacher.config.model_channels * teacher.config.channel_mult[-1]
        self.head = nn.Sequential(nn.GroupNorm(teacher.config.norm_groups, width), nn.SiLU(), nn.Conv2d(width, 1, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(t, self.model_channels).to(x.dtype))  # (B,) -> (B, 4 mc)
        h = x
        for block in self.input_blocks:
            h = block(h, emb, context)  # (B, 4, 8, 8) -> ... -> (B, 128, 4, 4) for the tiny UNet
        h = self.middle_block(h, emb, context)
        return self.head(h).flatten(1)  # (B, 128, 4, 4) -> (B, 16) logits, one per position


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """`module` without parameter gradients for a while (the generator's step back-propagates through D)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def generator_losses(generator: nn.Module, discriminator: nn.Module, x_t: torch.Tensor, t: torch.Tensor,
                     target: torch.Tensor, t_disc: torch.Tensor, disc_noise: torch.Tensor, context: torch.Tensor,
                     alphas_cumprod: torch.Tensor) -> dict[str, torch.Tensor]:  # fmt: skip
    """{"adv", "rec"} of L_G and the generated x0_hat (detached, for the discriminator's step); `target` is
    the reconstruction's clean latent (x0, or the ODE end of x_t).

    `discriminator` should be the plain module, not a DDP wrapper: only the generator learns from this step.
    """
    x0_hat = consistency_function(generator, x_t, t, context, alphas_cumprod)  # (B, 4, h, w)
    fake = add_noise(alphas_cumprod, x0_hat, disc_noise, t_disc)  # q(x_t' | x0_hat)
    with frozen(discriminator):
        adv = F.softplus(-discriminator(fake, t_disc, context)).mean()
    return {"adv": adv, "rec": F.mse_loss(x0_hat, target), "x0_hat": x0_hat.detach()}


def discriminator_loss(discriminator: nn.Module, z0: torch.Tensor, x0_hat: torch.Tensor, t_disc: torch.Tensor,
                       disc_noise: torch.Tensor, context: torch.Tensor,
                       alphas_cumprod: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """L_D, real and fake in one call (one forward per backward, as DDP needs)."""
    real = add_noise(alphas_cumprod, z0, disc_noise, t_disc)
    fake = add_noise(alphas_cumprod, x0_hat, disc_noise, t_disc)
    both = discriminator(torch.cat([real, fake]), torch.cat([t_disc, t_disc]), torch.cat([context, context]))
    d_real, d_fake = both.chunk(2)  # (B, P) each
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
