"""ldm's SpatialTransformer: how text enters the UNet (Rombach et al. 2022, section 3.3).

The feature map is flattened into H*W tokens; each token self-attends to the others, then
cross-attends to the text encoder's 77 hidden states, then goes through a GEGLU feed-forward.
Names follow SD checkpoints: `norm`, `proj_in`, `transformer_blocks.0.{attn1,attn2,ff,norm1..3}`, `proj_out`.
`BlockOptions` holds MobileDiffusion's switches; its defaults are SD's block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from transformer.attention import CrossAttention
from transformer.feed_forward import FeedForward


@dataclass(frozen=True)
class BlockOptions:
    self_attention: bool = True  # False: cross-attention only (MobileDiffusion at the highest resolution)
    shared_kv: bool = False  # one K/V projection in self-attention
    attention: str = "softmax"  # or "relu"
    ff_mult: int = 4
    ff_activation: str = "gelu"


class BasicTransformerBlock(nn.Module):
    """Pre-LN: x += self-attn(LN x); x += cross-attn(LN x, text); x += GEGLU-FF(LN x).

    Without self-attention, `attn1` and `norm1` are absent (no keys) and the first line is skipped.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int, opts: BlockOptions = BlockOptions()):
        super().__init__()
        self.self_attention = opts.self_attention
        if opts.self_attention:  # self-attention over pixels
            self.attn1 = CrossAttention(dim, None, heads, dim_head, opts.shared_kv, opts.attention)
        self.ff = FeedForward(dim, opts.ff_mult, opts.ff_activation)
        self.attn2 = CrossAttention(dim, context_dim, heads, dim_head, kind=opts.attention)  # pixels attend to text
        if opts.self_attention:
            self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        if self.self_attention:
            x = x + self.attn1(self.norm1(x))  # (B, HW, C)
        x = x + self.attn2(self.norm2(x), context)  # (B, HW, C) x (B, 77, 768) -> (B, HW, C)
        return x + self.ff(self.norm3(x))  # (B, HW, C)


class SpatialTransformer(nn.Module):
    """GroupNorm, project in, transformer blocks over H*W tokens, project out, add the input back.

    SD 1.x projects with 1x1 convolutions; SD 2.x with linear layers (`use_linear`), which only moves
    the projection to the other side of the flatten.
    """

    def __init__(
        self,
        channels: int,
        heads: int,
        dim_head: int,
        context_dim: int,
        depth: int = 1,
        use_linear: bool = False,
        norm_groups: int = 32,
        opts: BlockOptions = BlockOptions(),
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        self.use_linear = use_linear
        self.norm = nn.GroupNorm(norm_groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner) if use_linear else nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(inner, heads, dim_head, context_dim, opts) for _ in range(depth)
        )
        self.proj_out = nn.Linear(inner, channels) if use_linear else nn.Conv2d(inner, channels, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        x_in = x
        x = self.norm(x)  # (B, C, H, W)
        if not self.use_linear:
            x = self.proj_in(x)  # (B, C, H, W) -> (B, inner, H, W)
        x = rearrange(x, "b c h w -> b (h w) c")  # (B, inner, H, W) -> (B, HW, inner)
        if self.use_linear:
            x = self.proj_in(x)  # (B, HW, C) -> (B, HW, inner)
        for block in self.transformer_blocks:
            x = block(x, context)  # (B, HW, inner)
        if self.use_linear:
            x = self.proj_out(x)  # (B, HW, inner) -> (B, HW, C)
        x = rearrange(x, "b (h w) c -> b c h w", h=h, w=w)  # (B, HW, C) -> (B, C, H, W)
        if not self.use_linear:
            x = self.proj_out(x)  # (B, inner, H, W) -> (B, C, H, W)
        return x + x_in
