"""Resolution changes between UNet levels: a strided 3x3 conv down, nearest-neighbour x2 + conv up."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Downsample(nn.Module):
    """Key `op`, as in ldm."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)  # (B, C, H, W) -> (B, C, ceil(H/2), ceil(W/2))


class Upsample(nn.Module):
    """Key `conv`. `size` lets odd latent sizes (e.g. 65 for 520 px) meet their skip connection again."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        if size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # (B, C, H, W) -> (B, C, 2H, 2W)
        else:
            x = F.interpolate(x, size=size, mode="nearest")  # (B, C, H, W) -> (B, C, *size)
        return self.conv(x)
