"""UNet configurations. Field names follow ldm's `unet_config` in SD's v1-inference.yaml.

The fields after `norm_groups` are the mobile building blocks of MobileDiffusion (Zhao et al. 2023); their
defaults reproduce SD 1.x exactly (same modules, same keys, same numbers), so each is a switch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 4
    out_channels: int = 4
    model_channels: int = 320  # width of the first level; level i has model_channels * channel_mult[i]
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int | tuple[int, ...] = 2  # per level on the way down (one more on the way up); or one per level
    attention_resolutions: tuple[int, ...] = (4, 2, 1)  # downsampling factors that get a SpatialTransformer
    num_heads: int = 8  # SD 1.x fixes the head count ...
    num_head_channels: int = -1  # ... SD 2.x fixes the head width instead (64) and derives the count
    transformer_depth: int | tuple[int, ...] = 1  # blocks per SpatialTransformer; or one per level (middle: last)
    context_dim: int = 768  # width of the text encoder's hidden states
    use_linear_in_transformer: bool = False
    norm_groups: int = 32
    # Mobile switches (MobileDiffusion, section 3); the defaults are SD 1.x.
    cross_attention_only: tuple[int, ...] = ()  # downsampling factors whose transformers drop self-attention
    shared_kv: bool = False  # self-attention: one projection `to_kv` gives both K and V
    separable_levels: tuple[int, ...] = ()  # levels whose ResBlocks use depthwise + pointwise 3x3 convs
    ff_activation: str = "gelu"  # gate of the gated feed-forward: "gelu" (GEGLU) or "silu" (SwiGLU)
    ff_mult: int = 4  # feed-forward width / channels; the gated projection is 2 * ff_mult wide (SD: 8x)
    attention: str = "softmax"  # "softmax" or "relu": ReLU(Q K^T / sqrt(d)) / L (Wortsman et al. 2023)

    def heads_at(self, channels: int) -> tuple[int, int]:
        """(heads, dim_head) of a SpatialTransformer over `channels` channels."""
        if self.num_head_channels == -1:
            return self.num_heads, channels // self.num_heads
        return channels // self.num_head_channels, self.num_head_channels

    def has_attention(self, level: int) -> bool:
        return 2**level in self.attention_resolutions

    def has_self_attention(self, level: int) -> bool:
        return 2**level not in self.cross_attention_only

    def res_blocks_at(self, level: int) -> int:
        n = self.num_res_blocks
        return n if isinstance(n, int) else n[level]

    def depth_at(self, level: int) -> int:
        d = self.transformer_depth
        return d if isinstance(d, int) else d[level]

    @property
    def is_mobile(self) -> bool:
        """True when any switch is off SD 1.x's architecture (such a UNet has no diffusers equivalent)."""
        return bool(
            self.cross_attention_only or self.shared_kv or self.separable_levels or self.ff_activation != "gelu"
            or self.ff_mult != 4 or self.attention != "softmax" or not isinstance(self.num_res_blocks, int)
            or not isinstance(self.transformer_depth, int)
        )  # fmt: skip


SD15_UNET = UNetConfig()
# SD 2.x (v2-inference.yaml and v2-inference-v.yaml): 64-wide heads (5, 10, 20 per level), linear
# projections around the spatial transformers, OpenCLIP's 1024-wide text context.
SD21_UNET = UNetConfig(num_heads=-1, num_head_channels=64, context_dim=1024, use_linear_in_transformer=True)

# The embedded model's size (about 4.2M parameters): 8x8 latents, two levels, text at both.
TINY_UNET = UNetConfig(
    model_channels=64, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2, 1),
    num_heads=4, context_dim=64,
)  # fmt: skip

# The mobile variant at the embedded model's size: the highest resolution keeps cross-attention only, the
# lower level's ResBlocks use separable convolutions, self-attention shares its K/V projection, and the
# feed-forward is SwiGLU at 6x instead of GEGLU at 8x. About 2.4M parameters (0.58x TINY_UNET).
MOBILE_TINY_UNET = UNetConfig(
    model_channels=64, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2, 1),
    num_heads=4, context_dim=64, cross_attention_only=(1,), shared_kv=True, separable_levels=(1,),
    ff_activation="silu", ff_mult=3,
)  # fmt: skip

# The mobile variant at SD 1.5's scale, in MobileDiffusion's direction: three levels (320, 640, 960 wide;
# no 8x8 level), the 64x64 level reduced to one up-path ResBlock with cross-attention only, transformers
# doubled at the 16x16 bottleneck, separable convolutions below the top level, shared K/V, SwiGLU at 6x.
MOBILE_SD_UNET = UNetConfig(
    channel_mult=(1, 2, 3), num_res_blocks=(0, 1, 2), attention_resolutions=(4, 2, 1), transformer_depth=(1, 1, 2),
    cross_attention_only=(1,), shared_kv=True, separable_levels=(1, 2), ff_activation="silu", ff_mult=3,
)  # fmt: skip

UNET_PRESETS = {"sd15": SD15_UNET, "tiny": TINY_UNET, "mobile-sd": MOBILE_SD_UNET, "mobile-tiny": MOBILE_TINY_UNET}
