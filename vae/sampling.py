"""Changing resolution by 2 between levels, with ldm's exact padding so trained weights still fit."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Downsample(nn.Module):
    """Stride-2 3x3 conv after padding one pixel on the right and bottom only.

    ldm pads asymmetrically (0, 1, 0, 1) instead of 1 on every side, so output pixel (i, j) sees
    input pixels 2i..2i+2; a symmetric pad would shift the receptive field by one pixel.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 1, 0, 1))  # (B, C, H, W) -> (B, C, H+1, W+1)
        return self.conv(x)  # (B, C, H+1, W+1) -> (B, C, H/2, W/2)


class Upsample(nn.Module):
    """Nearest-neighbour x2 then a 3x3 conv (no transposed conv, so no checkerboard artefacts)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # (B, C, H, W) -> (B, C, 2H, 2W)
        return self.conv(x)  # (B, C, 2H, 2W)
