"""ldm's Encoder: image -> mean and log-variance of the latent, 2**(levels-1) times smaller.

SD 1.x shapes for a 512x512 image (ch=128, ch_mult=(1, 2, 4, 4), z_channels=4):
(B, 3, 512, 512) -> 128 @ 512 -> 256 @ 256 -> 512 @ 128 -> 512 @ 64 -> mid -> (B, 8, 64, 64).
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from vae.config import VAEConfig
from vae.mid_block import MidBlock
from vae.norm import normalize
from vae.resnet import ResnetBlock
from vae.sampling import Downsample


class DownLevel(nn.Module):
    """One resolution level: `num_res_blocks` resnets, then (except at the last level) a downsample."""

    def __init__(self, in_channels: int, out_channels: int, config: VAEConfig, downsample: bool) -> None:
        super().__init__()
        channels = [in_channels] + [out_channels] * config.num_res_blocks
        self.block = nn.ModuleList(
            ResnetBlock(c_in, c_out, config.norm_groups) for c_in, c_out in pairwise(channels)
        )
        if downsample:  # no attribute at all otherwise, so no `downsample` keys, as in ldm
            self.downsample = Downsample(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)  # (B, C_in, H, W) -> (B, C_out, H, W)
        if hasattr(self, "downsample"):
            x = self.downsample(x)  # (B, C_out, H, W) -> (B, C_out, H/2, W/2)
        return x


class Encoder(nn.Module):
    """conv_in, down levels, mid block, norm + SiLU, conv_out to 2 * z_channels (mean and logvar)."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        channels = config.block_channels
        last = len(channels) - 1
        self.conv_in = nn.Conv2d(config.in_channels, config.ch, 3, padding=1)
        inputs = (config.ch, *channels[:-1])  # ldm's in_ch_mult = (1, *ch_mult)
        self.down = nn.ModuleList(
            DownLevel(c_in, c_out, config, downsample=i != last)
            for i, (c_in, c_out) in enumerate(zip(inputs, channels, strict=True))
        )
        self.mid = MidBlock(channels[-1], config.norm_groups)
        self.norm_out = normalize(channels[-1], config.norm_groups)
        self.conv_out = nn.Conv2d(channels[-1], 2 * config.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)  # (B, 3, 512, 512) -> (B, 128, 512, 512)
        for level in self.down:
            h = level(h)  # (B, 128, 512, 512) -> ... -> (B, 512, 64, 64)
        h = self.mid(h)  # (B, 512, 64, 64)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, 512, 64, 64) -> (B, 8, 64, 64)
