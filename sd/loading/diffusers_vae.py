"""The VAE between the original (ldm) layout, which `vae.AutoencoderKL` uses, and diffusers'.

Key names differ by module path (`encoder.down.0.block.1` vs `encoder.down_blocks.0.resnets.1`),
generated here by walking the config; besides renaming, the mid-block attention's q/k/v/proj_out
are 1x1 convs in ldm, weights (C, C, 1, 1), and Linear layers in diffusers, weights (C, C).
"""

from __future__ import annotations

import re
from typing import Any

import torch

from sd.errors import UserError
from sd.loading.rename import rename_prefixes
from vae.config import VAEConfig

_RESNET = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2"}
_ATTENTION = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
# Diffusers folders converted before diffusers 0.14 (SD 1.5's among them) still use these names.
_LEGACY_ATTENTION = {"q": "query", "k": "key", "v": "value", "proj_out": "proj_attn"}


def _resnet_pairs(original: str, diffusers: str, shortcut: bool) -> list[tuple[str, str]]:
    names = {**_RESNET, "nin_shortcut": "conv_shortcut"} if shortcut else _RESNET
    return [(f"{original}.{o}", f"{diffusers}.{d}") for o, d in names.items()]


def _mid_pairs(part: str, names: dict[str, str]) -> list[tuple[str, str]]:
    pairs = _resnet_pairs(f"{part}.mid.block_1", f"{part}.mid_block.resnets.0", False)
    pairs += _resnet_pairs(f"{part}.mid.block_2", f"{part}.mid_block.resnets.1", False)
    attention = f"{part}.mid_block.attentions.0"
    return pairs + [(f"{part}.mid.attn_1.{o}", f"{attention}.{d}") for o, d in names.items()]


def vae_prefix_pairs(config: VAEConfig) -> list[tuple[str, str]]:
    """(original, diffusers) prefix of every module with weights, in the order the model builds them."""
    channels = config.block_channels
    last = len(channels) - 1
    pairs = [("encoder.conv_in", "encoder.conv_in")]
    c_in = config.ch
    for i, c_out in enumerate(channels):
        for j in range(config.num_res_blocks):
            o, d = f"encoder.down.{i}.block.{j}", f"encoder.down_blocks.{i}.resnets.{j}"
            pairs += _resnet_pairs(o, d, shortcut=c_in != c_out)
            c_in = c_out
        if i != last:
            pairs += [(f"encoder.down.{i}.downsample.conv", f"encoder.down_blocks.{i}.downsamplers.0.conv")]
    pairs += _mid_pairs("encoder", _ATTENTION)
    pairs += [("encoder.norm_out", "encoder.conv_norm_out"), ("encoder.conv_out", "encoder.conv_out")]

    pairs += [("decoder.conv_in", "decoder.conv_in")]
    pairs += _mid_pairs("decoder", _ATTENTION)
    c_in = channels[-1]
    for i in reversed(range(len(channels))):  # ldm's up.{i} is diffusers' up_blocks.{last - i}
        for j in range(config.num_res_blocks + 1):
            o, d = f"decoder.up.{i}.block.{j}", f"decoder.up_blocks.{last - i}.resnets.{j}"
            pairs += _resnet_pairs(o, d, shortcut=c_in != channels[i])
            c_in = channels[i]
        if i != 0:
            pairs += [(f"decoder.up.{i}.upsample.conv", f"decoder.up_blocks.{last - i}.upsamplers.0.conv")]
    pairs += [("decoder.norm_out", "decoder.conv_norm_out"), ("decoder.conv_out", "decoder.conv_out")]
    return pairs + [("quant_conv", "quant_conv"), ("post_quant_conv", "post_quant_conv")]


# The only weights whose shape differs: 1x1 conv (C, C, 1, 1) in ldm, Linear (C, C) in diffusers.
_ATTENTION_PROJECTION = re.compile(r"(encoder|decoder)\.mid\.attn_1\.(q|k|v|proj_out)\.weight")


def _is_projection(original_key: str, weight: torch.Tensor, ndim: int) -> bool:
    return weight.ndim == ndim and bool(_ATTENTION_PROJECTION.fullmatch(original_key))


def vae_to_diffusers(state_dict: dict[str, torch.Tensor], config: VAEConfig) -> dict[str, torch.Tensor]:
    """Original-layout VAE state dict (no `first_stage_model.` prefix) -> diffusers' AutoencoderKL."""
    # q/k/v/proj_out: (C, C, 1, 1) -> (C, C)
    linear = {k: v[:, :, 0, 0] if _is_projection(k, v, ndim=4) else v for k, v in state_dict.items()}
    return rename_prefixes(linear, vae_prefix_pairs(config))


def vae_from_diffusers(state_dict: dict[str, torch.Tensor], config: VAEConfig) -> dict[str, torch.Tensor]:
    """Diffusers' AutoencoderKL state dict (current or pre-0.14 attention names) -> original layout."""
    legacy = _mid_pairs("encoder", _LEGACY_ATTENTION) + _mid_pairs("decoder", _LEGACY_ATTENTION)
    renamed = rename_prefixes(state_dict, vae_prefix_pairs(config) + legacy, reverse=True)
    # q/k/v/proj_out: (C, C) -> (C, C, 1, 1)
    return {k: v[:, :, None, None] if _is_projection(k, v, ndim=2) else v for k, v in renamed.items()}


def vae_config_to_diffusers(config: VAEConfig) -> dict[str, Any]:
    """The config.json diffusers writes for this VAE (`AutoencoderKL(**d)` builds the same model)."""
    if config.ch_mult[0] != 1 or config.embed_dim != config.z_channels:
        raise UserError("diffusers' AutoencoderKL needs ch_mult[0] == 1 and embed_dim == z_channels")
    levels = len(config.ch_mult)
    return {
        "_class_name": "AutoencoderKL",
        "in_channels": config.in_channels,
        "out_channels": config.out_ch,
        "down_block_types": ["DownEncoderBlock2D"] * levels,
        "up_block_types": ["UpDecoderBlock2D"] * levels,
        "block_out_channels": list(config.block_channels),
        "layers_per_block": config.num_res_blocks,
        "act_fn": "silu",
        "latent_channels": config.z_channels,
        "norm_num_groups": config.norm_groups,
        "sample_size": config.resolution,
        "scaling_factor": config.scaling_factor,
    }


# What diffusers' AutoencoderKL.__init__ assumes for a key its config.json leaves out.
_DIFFUSERS_DEFAULTS: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"],
    "up_block_types": ["UpDecoderBlock2D"],
    "block_out_channels": [64],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 32,
    "scaling_factor": 0.18215,
}
# Diffusers options that change the architecture or the latents, with the only value implemented here.
_FIXED = {
    "_class_name": "AutoencoderKL",
    "act_fn": "silu",
    "shift_factor": None,
    "use_quant_conv": True,
    "use_post_quant_conv": True,
    "mid_block_add_attention": True,
}


def vae_config_from_diffusers(d: dict[str, Any]) -> VAEConfig:
    """VAEConfig from a diffusers AutoencoderKL config.json dict; UserError for other architectures."""
    d = {**_DIFFUSERS_DEFAULTS, **d}
    for key, value in _FIXED.items():
        if d.get(key, value) != value:
            raise UserError(f"unsupported VAE config: {key}={d[key]!r}, only {value!r} is implemented")
    channels = list(d["block_out_channels"])
    for key, block in (("down_block_types", "DownEncoderBlock2D"), ("up_block_types", "UpDecoderBlock2D")):
        if list(d[key]) != [block] * len(channels):
            raise UserError(f"unsupported VAE config: {key}={d[key]}, only {block!r} blocks are implemented")
    if any(c % channels[0] for c in channels):
        raise UserError(f"unsupported VAE config: block_out_channels={channels}, not multiples of the first")
    return VAEConfig(
        in_channels=d["in_channels"],
        out_ch=d["out_channels"],
        ch=channels[0],
        ch_mult=tuple(c // channels[0] for c in channels),
        num_res_blocks=d["layers_per_block"],
        z_channels=d["latent_channels"],
        embed_dim=d["latent_channels"],
        norm_groups=d["norm_num_groups"],
        scaling_factor=d["scaling_factor"],
        resolution=d["sample_size"],
    )
