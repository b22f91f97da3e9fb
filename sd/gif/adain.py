"""AdaIN of an in-between's starting latents toward its keyframes' statistics (DiffMorpher, Zhang et al. 2024).

slerp keeps the norm of the whole tensor, not each latent channel's mean and spread. Those carry the image's
overall colour and contrast: the mean of a channel over the latent's pixels is a colour cast of the whole
picture. An in-between at weight w between keyframes whose starting latents are x_a and x_b (at the same step)
is moved to the per-channel lerp of theirs:

    m_w = (1 - w) mean_c(x_a) + w mean_c(x_b),    s_w = (1 - w) std_c(x_a) + w std_c(x_b)
    z'  = s_w (z - mean_c(z)) / std_c(z) + m_w

for each channel c, mean and (population) std over the h x w positions.
"""

from __future__ import annotations

import torch

from sd.gif.interpolation import lerp


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and population std over the positions: (B, C, h, w) -> 2 x (B, C, 1, 1)."""
    std, mean = torch.std_mean(x.double(), dim=(2, 3), keepdim=True, correction=0)
    return mean, std


def adain(z: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """`z` (B, C, h, w) with each channel's mean and std replaced by `mean`, `std` (B, C, 1, 1)."""
    own_mean, own_std = channel_stats(z)
    return (std * (z.double() - own_mean) / own_std.clamp_min(1e-12) + mean).to(z.dtype)


def adain_between(z: torch.Tensor, a: torch.Tensor, b: torch.Tensor, w: float) -> torch.Tensor:
    """`z` (1, C, h, w) moved to the lerp at `w` of `a`'s and `b`'s per-channel statistics."""
    (mean_a, std_a), (mean_b, std_b) = channel_stats(a), channel_stats(b)
    return adain(z, lerp(mean_a, mean_b, w), lerp(std_a, std_b, w))
