"""ldm's AttnBlock: single-head self-attention over all H*W positions of a feature map.

    out = x + proj_out(softmax(q k^T / sqrt(C)) v),   q, k, v = 1x1 convs of GroupNorm(x)

It sits only in the mid-blocks, at the lowest resolution (64x64 for a 512x512 image), where
attending over every position is affordable and gives each latent pixel a global view.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from transformer.attention import multi_head_attention
from vae.norm import normalize


class AttnBlock(nn.Module):
    """Residual self-attention; q/k/v/proj_out are 1x1 convs so the keys match ldm checkpoints."""

    def __init__(self, channels: int, norm_groups: int) -> None:
        super().__init__()
        self.norm = normalize(channels, norm_groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        h = self.norm(x)
        # Each pixel is a token: (B, C, H, W) -> (B, H*W, C)
        q, k, v = (rearrange(conv(h), "b c h w -> b (h w) c") for conv in (self.q, self.k, self.v))
        h = multi_head_attention(q, k, v, heads=1)  # (B, H*W, C), scale C^-0.5
        h = rearrange(h, "b (h w) c -> b c h w", h=height, w=width)  # (B, H*W, C) -> (B, C, H, W)
        return x + self.proj_out(h)  # (B, C, H, W)
