"""The original U-Net for segmentation (Ronneberger, Fischer & Brox 2015, "U-Net: Convolutional Networks for
Biomedical Image Segmentation").

    image (B, 3, 64, 64) -> per-pixel class logits (B, 2, 64, 64)

Contracting path: at each level two 3x3 convolutions with ReLU, then 2x2 max pooling halves the resolution
while the next level doubles the channels. Expanding path: a 2x2 up-convolution halves the channels and
doubles the resolution, the feature map of the same level from the contracting path is concatenated (the
skip connection that gives back the detail pooling threw away), and two 3x3 convolutions follow. A final
1x1 convolution maps to the classes.

One change from the paper: its convolutions are unpadded (572 -> 388 pixels, skips cropped to fit); here
they are padded, so the output has the input's size and skips concatenate without cropping, as in most
re-implementations and in Stable Diffusion's UNet (`unet/model.py`), which keeps the same skip concatenation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SegmentationUNetConfig:
    in_channels: int = 3
    num_classes: int = 2  # background, shape
    base_channels: int = 8  # the paper: 64
    depth: int = 3  # poolings; the paper: 4 (64 -> 128 -> 256 -> 512 -> 1024 channels)
    batch_norm: bool = True  # after each conv; not in the paper (2015), but it trains here in a fraction of the steps


class DoubleConv(nn.Sequential):
    """conv 3x3 -> ReLU -> conv 3x3 -> ReLU: the unit the paper repeats at every level of both paths."""

    def __init__(self, c_in: int, c_out: int, batch_norm: bool = True) -> None:
        def norm() -> nn.Module:
            return nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()

        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1), norm(), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1), norm(), nn.ReLU(inplace=True),
        )  # fmt: skip


class UpStep(nn.Module):
    """One level of the expanding path: up-convolve, concatenate the skip, convolve twice."""

    def __init__(self, c_in: int, c_out: int, batch_norm: bool = True) -> None:
        super().__init__()
        self.up_conv = nn.ConvTranspose2d(c_in, c_out, 2, stride=2)  # "up-convolution" halving the channels
        self.conv = DoubleConv(2 * c_out, c_out, batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up_conv(x)  # (B, 2C, h, w) -> (B, C, 2h, 2w)
        x = torch.cat([skip, x], dim=1)  # (B, C, 2h, 2w) + (B, C, 2h, 2w) -> (B, 2C, 2h, 2w)
        return self.conv(x)  # (B, 2C, 2h, 2w) -> (B, C, 2h, 2w)


class SegmentationUNet(nn.Module):
    def __init__(self, config: SegmentationUNetConfig = SegmentationUNetConfig()) -> None:
        super().__init__()
        self.config = config
        widths = [config.base_channels * 2**i for i in range(config.depth + 1)]  # [8, 16, 32, 64]
        bn = config.batch_norm
        inputs = [config.in_channels, *widths[:-2]]  # each level reads the previous level's width
        self.contracting = nn.ModuleList(
            DoubleConv(c_in, c_out, bn) for c_in, c_out in zip(inputs, widths[:-1], strict=True)
        )
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = DoubleConv(widths[-2], widths[-1], bn)
        self.expanding = nn.ModuleList(
            UpStep(c_in, c_out, bn) for c_in, c_out in zip(widths[:0:-1], widths[-2::-1], strict=True)
        )
        self.head = nn.Conv2d(widths[0], config.num_classes, 1)

    def forward(self, x: torch.Tensor, features: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Logits per pixel; pass a list as `features` to collect every level's activation (for plots)."""
        skips = []
        for level in self.contracting:
            x = level(x)  # (B, C_in, h, w) -> (B, C, h, w)
            skips.append(x)
            x = self.pool(x)  # (B, C, h, w) -> (B, C, h/2, w/2)
        x = self.bottleneck(x)  # (B, C, 8, 8) -> (B, 2C, 8, 8)
        if features is not None:
            features.extend([*skips, x])
        for level, skip in zip(self.expanding, reversed(skips), strict=True):
            x = level(x, skip)  # (B, 2C, h, w) -> (B, C, 2h, 2w)
            if features is not None:
                features.append(x)
        return self.head(x)  # (B, 8, 64, 64) -> (B, 2, 64, 64)
