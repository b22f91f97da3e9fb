"""ldm's ResnetBlock, without the time embedding the autoencoder does not use."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vae.norm import normalize


class ResnetBlock(nn.Module):
    """x + conv2(silu(norm2(conv1(silu(norm1(x)))))), pre-activation as in He et al. 2016.

    When the channel count changes, the skip path goes through a 1x1 conv (`nin_shortcut`,
    "network in network"); otherwise it is the identity and has no weights.
    """

    def __init__(self, in_channels: int, out_channels: int, norm_groups: int) -> None:
        super().__init__()
        self.norm1 = normalize(in_channels, norm_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = normalize(out_channels, norm_groups)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nin_shortcut = (
            nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C_in, H, W) -> (B, C_out, H, W)
        h = self.conv2(F.silu(self.norm2(h)))  # (B, C_out, H, W)
        return self.nin_shortcut(x) + h  # (B, C_out, H, W)
