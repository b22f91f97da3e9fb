"""ldm's Decoder: latent -> image, the encoder's mirror image (one extra resnet per level).

SD 1.x shapes for a 64x64 latent (ch=128, ch_mult=(1, 2, 4, 4), z_channels=4):
(B, 4, 64, 64) -> 512 @ 64 -> mid -> 512 @ 128 -> 512 @ 256 -> 256 @ 512 -> 128 @ 512 -> (B, 3, 512, 512).
`up[i]` has the channels of encoder level `i`, so `up[0]` is the HIGHEST resolution and runs last
(ldm builds the list backwards with `insert(0, ...)`; the checkpoint keys depend on it).
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
from vae.sampling import Upsample


class UpLevel(nn.Module):
    """One resolution level: `num_res_blocks + 1` resnets, then (except at level 0) an upsample."""

    def __init__(self, in_channels: int, out_channels: int, config: VAEConfig, upsample: bool) -> None:
        super().__init__()
        channels = [in_channels] + [out_channels] * (config.num_res_blocks + 1)
        self.block = nn.ModuleList(
            ResnetBlock(c_in, c_out, config.norm_groups) for c_in, c_out in pairwise(channels)
        )
        if upsample:  # no attribute at all otherwise, so no `upsample` keys, as in ldm
            self.upsample = Upsample(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)  # (B, C_in, H, W) -> (B, C_out, H, W)
        if hasattr(self, "upsample"):
            x = self.upsample(x)  # (B, C_out, H, W) -> (B, C_out, 2H, 2W)
        return x


class Decoder(nn.Module):
    """conv_in, mid block, up levels from lowest to highest resolution, norm + SiLU, conv_out."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        channels = config.block_channels
        self.conv_in = nn.Conv2d(config.z_channels, channels[-1], 3, padding=1)
        self.mid = MidBlock(channels[-1], config.norm_groups)
        # Level i takes the channels of level i+1 (the one that runs before it); the last takes the mid's.
        inputs = (*channels[1:], channels[-1])
        self.up = nn.ModuleList(
            UpLevel(c_in, c_out, config, upsample=i != 0)
            for i, (c_in, c_out) in enumerate(zip(inputs, channels, strict=True))
        )
        self.norm_out = normalize(channels[0], config.norm_groups)
        self.conv_out = nn.Conv2d(channels[0], config.out_ch, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)  # (B, 4, 64, 64) -> (B, 512, 64, 64)
        h = self.mid(h)  # (B, 512, 64, 64)
        for level in reversed(self.up):  # lowest resolution first: up[3], ..., up[0]
            h = level(h)  # (B, 512, 64, 64) -> ... -> (B, 128, 512, 512)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, 128, 512, 512) -> (B, 3, 512, 512)
