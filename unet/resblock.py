"""ldm's ResBlock: two 3x3 convolutions with the timestep added in between (Ho et al. 2020).

    h = conv(SiLU(GN(x)));  h += Linear(SiLU(emb));  h = conv(SiLU(GN(h)));  out = skip(x) + h

Keys follow SD checkpoints: `in_layers.{0,2}`, `emb_layers.1`, `out_layers.{0,3}`, `skip_connection`;
the parameter-free layers (SiLU, Dropout) keep their slots so the indices match. With `separable`
(MobileDiffusion) both 3x3 convolutions are depthwise + pointwise (`in_layers.2.depthwise`, ...).
"""

from __future__ import annotations

import torch
from torch import nn

from unet.separable_conv import SeparableConv2d


def conv3x3(channels: int, out_channels: int, separable: bool) -> nn.Module:
    if separable:
        return SeparableConv2d(channels, out_channels)
    return nn.Conv2d(channels, out_channels, 3, padding=1)


class ResBlock(nn.Module):
    def __init__(
        self, channels: int, emb_channels: int, out_channels: int, norm_groups: int = 32, separable: bool = False
    ) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(
            nn.GroupNorm(norm_groups, channels), nn.SiLU(), conv3x3(channels, out_channels, separable)
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            nn.GroupNorm(norm_groups, out_channels),
            nn.SiLU(),
            nn.Dropout(0.0),
            conv3x3(out_channels, out_channels, separable),
        )
        # A 1x1 convolution only where the width changes; Identity has no weights, so no key.
        self.skip_connection = (
            nn.Identity() if channels == out_channels else nn.Conv2d(channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)  # (B, C_in, H, W) -> (B, C_out, H, W)
        h = h + self.emb_layers(emb)[:, :, None, None]  # (B or 1, 1280) -> (B or 1, C_out, 1, 1), broadcast
        h = self.out_layers(h)  # (B, C_out, H, W)
        return self.skip_connection(x) + h  # (B, C_out, H, W)
