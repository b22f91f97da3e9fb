"""The autoencoder's hyper-parameters, named after ldm's `ddconfig` so the two can be compared."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VAEConfig:
    """One config drives every size, from SD 1.x's 84M-parameter VAE down to a toy one.

    Level `i` of the encoder (and of the decoder, in reverse) has `ch * ch_mult[i]` channels and
    every level but the last halves the resolution, so latents are `2 ** (len(ch_mult) - 1)` times
    smaller than images (f=8 for SD). `resolution` only fills diffusers' `sample_size`: the model is
    fully convolutional and takes any size divisible by the downsampling factor.
    """

    in_channels: int = 3
    out_ch: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    z_channels: int = 4  # channels of the encoder's output / the decoder's input
    embed_dim: int = 4  # latent channels after quant_conv: what the diffusion model sees
    norm_groups: int = 32
    scaling_factor: float = 0.18215  # latents * this have ~unit variance; applied by the pipeline
    resolution: int = 512

    def __post_init__(self) -> None:
        bad = [c for c in self.block_channels if c % self.norm_groups]
        if bad:
            raise ValueError(f"channels {bad} are not divisible by norm_groups={self.norm_groups}")

    @property
    def block_channels(self) -> tuple[int, ...]:
        """Channels of each resolution level, highest resolution first (diffusers' block_out_channels)."""
        return tuple(self.ch * m for m in self.ch_mult)

    @property
    def downsample_factor(self) -> int:
        """Image side / latent side: 8 for SD."""
        return 2 ** (len(self.ch_mult) - 1)


SD15_VAE = VAEConfig()

# The embedded model's size (about 1M parameters): still f=8 (64x64 images -> 8x8x4 latents), like SD.
TINY_VAE = VAEConfig(ch=16, ch_mult=(1, 2, 4, 4), num_res_blocks=1, norm_groups=8, resolution=64)
