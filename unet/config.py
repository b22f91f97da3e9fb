"""UNet configurations. Field names follow ldm's `unet_config` in SD's v1-inference.yaml."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 4
    out_channels: int = 4
    model_channels: int = 320  # width of the first level; level i has model_channels * channel_mult[i]
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2  # residual blocks per level on the way down (one more on the way up)
    attention_resolutions: tuple[int, ...] = (4, 2, 1)  # downsampling factors that get a SpatialTransformer
    num_heads: int = 8  # SD 1.x fixes the head count ...
    num_head_channels: int = -1  # ... SD 2.x fixes the head width instead (64) and derives the count
    transformer_depth: int = 1
    context_dim: int = 768  # width of the text encoder's hidden states
    use_linear_in_transformer: bool = False
    norm_groups: int = 32

    def heads_at(self, channels: int) -> tuple[int, int]:
        """(heads, dim_head) of a SpatialTransformer over `channels` channels."""
        if self.num_head_channels == -1:
            return self.num_heads, channels // self.num_heads
        return channels // self.num_head_channels, self.num_head_channels

    def has_attention(self, level: int) -> bool:
        return 2**level in self.attention_resolutions


SD15_UNET = UNetConfig()
# SD 2.x (v2-inference.yaml and v2-inference-v.yaml): 64-wide heads (5, 10, 20 per level), linear
# projections around the spatial transformers, OpenCLIP's 1024-wide text context.
SD21_UNET = UNetConfig(num_heads=-1, num_head_channels=64, context_dim=1024, use_linear_in_transformer=True)

# The embedded model's size (about 4.2M parameters): 8x8 latents, two levels, text at both.
TINY_UNET = UNetConfig(
    model_channels=64, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2, 1),
    num_heads=4, context_dim=64,
)  # fmt: skip
