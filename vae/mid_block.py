"""The block at the lowest resolution of both encoder and decoder: resnet, attention, resnet."""

from __future__ import annotations

import torch
from torch import nn

from vae.attention import AttnBlock
from vae.resnet import ResnetBlock


class MidBlock(nn.Module):
    """Keys `block_1`, `attn_1`, `block_2` as ldm's `mid` (a bare container there)."""

    def __init__(self, channels: int, norm_groups: int) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, norm_groups)
        self.attn_1 = AttnBlock(channels, norm_groups)
        self.block_2 = ResnetBlock(channels, channels, norm_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))  # (B, C, H, W), e.g. (B, 512, 64, 64)
