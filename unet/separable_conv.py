"""Depthwise-separable convolution (Howard et al. 2017, MobileNets), as MobileDiffusion uses in its ResBlocks.

    y = W_point * (W_depth (*) x):   a 3x3 convolution per channel, then a 1x1 convolution mixing channels.

A full 3x3 convolution from C_in to C_out channels costs 9 C_in C_out multiply-adds per pixel; the
separable one 9 C_in + C_in C_out, about 9x fewer at SD's widths.
"""

from __future__ import annotations

import torch
from torch import nn


class SeparableConv2d(nn.Module):
    """Keys `depthwise.{weight,bias}`, `pointwise.{weight,bias}`."""

    def __init__(self, channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel_size, padding=padding, groups=channels)
        self.pointwise = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))  # (B, C_in, H, W) -> (B, C_in, H, W) -> (B, C_out, H, W)
