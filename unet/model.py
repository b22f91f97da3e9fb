"""The conditional UNet of Stable Diffusion (ldm's `UNetModel`, Rombach et al. 2022).

    x_t (B, 4, h, w), t, text (B, 77, 768)  ->  predicted noise eps (B, 4, h, w)

Down path: `input_blocks` halve the resolution level by level (ResBlocks + SpatialTransformers),
`middle_block` works at the lowest resolution, and `output_blocks` go back up, each first
concatenating the matching down-path activation (the U-Net skip connections, Ronneberger et al. 2015).
Attribute names are those of SD checkpoints (`model.diffusion_model.` stripped), so an original
file loads with a strict `load_state_dict`. The mobile switches of `UNetConfig` (MobileDiffusion) change
which modules a block holds, never the code path of the SD 1.x configuration.
"""

from __future__ import annotations

import torch
from torch import nn

from transformer.spatial_transformer import BlockOptions, SpatialTransformer
from unet.config import SD15_UNET, UNetConfig
from unet.resblock import ResBlock
from unet.sampling import Downsample, Upsample
from unet.timestep import timestep_embedding


class TimestepEmbedSequential(nn.Sequential):
    """A Sequential that hands each layer what it needs: ResBlocks the time embedding, transformers the text."""

    def forward(
        self,
        x: torch.Tensor,
        emb: torch.Tensor,
        context: torch.Tensor,
        upsample_size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context)
            elif isinstance(layer, Upsample):
                x = layer(x, upsample_size)
            else:
                x = layer(x)
        return x


class UNetModel(nn.Module):
    def __init__(self, config: UNetConfig = SD15_UNET) -> None:
        super().__init__()
        self.config = config
        mc, groups = config.model_channels, config.norm_groups
        emb_dim = 4 * mc  # 1280 for SD 1.x

        def transformer(ch: int, level: int) -> SpatialTransformer:
            heads, dim_head = config.heads_at(ch)
            opts = BlockOptions(
                config.has_self_attention(level), config.shared_kv, config.attention, config.ff_mult,
                config.ff_activation,
            )  # fmt: skip
            return SpatialTransformer(
                ch, heads, dim_head, config.context_dim, config.depth_at(level),
                config.use_linear_in_transformer, groups, opts,
            )  # fmt: skip

        def resblock(ch: int, out: int, level: int) -> ResBlock:
            return ResBlock(ch, emb_dim, out, groups, separable=level in config.separable_levels)

        self.time_embed = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

        self.input_blocks = nn.ModuleList(
            [TimestepEmbedSequential(nn.Conv2d(config.in_channels, mc, 3, padding=1))]
        )
        skip_channels = [mc]  # widths of the activations the up path will concatenate, in push order
        ch = mc
        last_level = len(config.channel_mult) - 1
        for level, mult in enumerate(config.channel_mult):
            for _ in range(config.res_blocks_at(level)):
                layers: list[nn.Module] = [resblock(ch, mult * mc, level)]
                ch = mult * mc
                if config.has_attention(level):
                    layers.append(transformer(ch, level))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                skip_channels.append(ch)
            if level != last_level:
                self.input_blocks.append(TimestepEmbedSequential(Downsample(ch)))
                skip_channels.append(ch)

        self.middle_block = TimestepEmbedSequential(
            resblock(ch, ch, last_level), transformer(ch, last_level), resblock(ch, ch, last_level)
        )

        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(config.channel_mult))):
            n = config.res_blocks_at(level)
            for i in range(n + 1):
                layers = [resblock(ch + skip_channels.pop(), mult * mc, level)]
                ch = mult * mc
                if config.has_attention(level):
                    layers.append(transformer(ch, level))
                if level and i == n:
                    layers.append(Upsample(ch))
                self.output_blocks.append(TimestepEmbedSequential(*layers))

        self.out = nn.Sequential(
            nn.GroupNorm(groups, ch), nn.SiLU(), nn.Conv2d(mc, config.out_channels, 3, padding=1)
        )

    def forward(
        self, x: torch.Tensor, timesteps: torch.Tensor | float, context: torch.Tensor
    ) -> torch.Tensor:
        """Predict the noise in x (B, 4, h, w) at step t given text hidden states (B, 77, 768)."""
        t = torch.as_tensor(timesteps, device=x.device)
        # A single timestep (a scalar or (1,): what the samplers pass) is embedded once, as (1, 1280), and broadcast
        # in every ResBlock: cheaper, and a sample's result does not depend on the batch size (a (B, 320) matmul
        # may round differently for different B). Batch invariance is the caller's choice, not probed here.
        t = t.reshape(1) if t.ndim == 0 else t  # (1,) or (B,)
        t_emb = timestep_embedding(t, self.config.model_channels).to(x.dtype)  # (B or 1,) -> (B or 1, 320)
        emb = self.time_embed(t_emb)  # (B or 1, 320) -> (B or 1, 1280)

        h, skips = x, []
        for block in self.input_blocks:
            h = block(h, emb, context)  # e.g. (B, 4, 64, 64) -> (B, 320, 64, 64) -> ... -> (B, 1280, 8, 8)
            skips.append(h)
        h = self.middle_block(h, emb, context)  # (B, 1280, 8, 8)
        for block in self.output_blocks:
            h = torch.cat(
                [h, skips.pop()], dim=1
            )  # (B, C, h, w) + (B, C_skip, h, w) -> (B, C + C_skip, h, w)
            # Upsample to the size of the next skip, so odd sizes (65 -> 33 -> 17) round-trip exactly.
            h = block(h, emb, context, upsample_size=skips[-1].shape[-2:] if skips else None)
        return self.out(h)  # (B, 320, 64, 64) -> (B, 4, 64, 64)
