"""Configs read off an original-layout state dict's shapes, for files that carry no config.

Everything structural (widths, levels, block counts, attention placement) is visible in the tensor
shapes. Head counts, GroupNorm group counts and activations are not: those default to the family's
values (SD 1.x: 8 UNet heads, quick-GELU; SD 2.x: 64-wide UNet heads, GELU, the penultimate text layer;
both: 64-wide CLIP heads, 32 groups). Our own exports store their configs, so they never need this guess.
"""

from __future__ import annotations

import re

import torch

from sd.loading.checkpoint_types import SD1, SD2
from transformer.clip_text import SD21_TEXT, CLIPTextConfig
from unet.config import SD15_UNET, SD21_UNET, UNetConfig
from vae.config import VAEConfig


def _indices(state_dict: dict[str, torch.Tensor], pattern: str) -> list[int]:
    """Distinct integers captured by `pattern` (one group) over all keys, sorted."""
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state_dict if (m := regex.match(k))})


def infer_unet_config(sd: dict[str, torch.Tensor], family: str = SD1) -> UNetConfig:
    conv_in = sd["input_blocks.0.0.weight"]  # (model_channels, in_channels, 3, 3)
    mc = conv_in.shape[0]
    blocks = _indices(sd, r"input_blocks\.(\d+)\.")
    downsamplers = [i for i in blocks if f"input_blocks.{i}.0.op.weight" in sd]
    num_res_blocks = (downsamplers[0] - 1) if downsamplers else len(blocks) - 1
    levels = len(downsamplers) + 1
    channel_mult, attention = [], []
    for level in range(levels):
        first = 1 + level * (num_res_blocks + 1)
        channel_mult.append(sd[f"input_blocks.{first}.0.in_layers.2.weight"].shape[0] // mc)
        if f"input_blocks.{first}.1.proj_in.weight" in sd:
            attention.append(2**level)
    proj_in = sd["middle_block.1.proj_in.weight"]
    to_k = sd["middle_block.1.transformer_blocks.0.attn2.to_k.weight"]  # (inner, context_dim)
    heads = SD21_UNET if family == SD2 else SD15_UNET
    return UNetConfig(
        in_channels=conv_in.shape[1],
        out_channels=sd["out.2.weight"].shape[0],
        model_channels=mc,
        channel_mult=tuple(channel_mult),
        num_res_blocks=num_res_blocks,
        attention_resolutions=tuple(reversed(attention)),  # ldm order: (4, 2, 1)
        num_heads=heads.num_heads,
        num_head_channels=heads.num_head_channels,
        transformer_depth=len(_indices(sd, r"middle_block\.1\.transformer_blocks\.(\d+)\.")),
        context_dim=to_k.shape[1],
        use_linear_in_transformer=proj_in.ndim == 2,
    )


def infer_vae_config(sd: dict[str, torch.Tensor]) -> VAEConfig:
    conv_in = sd["encoder.conv_in.weight"]  # (ch, in_channels, 3, 3)
    ch = conv_in.shape[0]
    levels = _indices(sd, r"encoder\.down\.(\d+)\.")
    return VAEConfig(
        in_channels=conv_in.shape[1],
        out_ch=sd["decoder.conv_out.weight"].shape[0],
        ch=ch,
        ch_mult=tuple(sd[f"encoder.down.{i}.block.0.conv1.weight"].shape[0] // ch for i in levels),
        num_res_blocks=len(_indices(sd, r"encoder\.down\.0\.block\.(\d+)\.")),
        z_channels=sd["decoder.conv_in.weight"].shape[1],
        embed_dim=sd["post_quant_conv.weight"].shape[0],
    )


def infer_text_config(sd: dict[str, torch.Tensor], family: str = SD1) -> CLIPTextConfig:
    tokens = sd["text_model.embeddings.token_embedding.weight"]  # (vocab, width)
    width = tokens.shape[1]
    layers = len(_indices(sd, r"text_model\.encoder\.layers\.(\d+)\."))
    return CLIPTextConfig(
        vocab_size=tokens.shape[0],
        max_position_embeddings=sd["text_model.embeddings.position_embedding.weight"].shape[0],
        hidden_size=width,
        intermediate_size=sd["text_model.encoder.layers.0.mlp.fc1.weight"].shape[0],
        num_hidden_layers=layers,
        num_attention_heads=width // 64,
        **(_sd2_text_fields(width, layers) if family == SD2 else {}),
    )


def _sd2_text_fields(width: int, layers: int) -> dict[str, object]:
    """SD 2.x runs OpenCLIP's 24-layer tower without its last layer. Files written from a diffusers
    folder (23 layers) lack that layer already, so they skip none; any other SD 2.x-structured file
    is taken to store its unused last layer, as ldm's own files do."""
    holds_unused = (width, layers) != (SD21_TEXT.hidden_size, SD21_TEXT.num_hidden_layers - 1)
    return {"hidden_act": SD21_TEXT.hidden_act, "skip_last_layers": SD21_TEXT.skip_last_layers if holds_unused else 0}
