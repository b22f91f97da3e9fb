"""Recognise checkpoints this stack cannot run yet, and say what they look like.

Better one clear line ("this looks like SDXL") than a wall of missing keys.
"""

from __future__ import annotations

import torch

from sd.errors import UserError

UNET = "model.diffusion_model."
VAE = "first_stage_model."
TEXT = "cond_stage_model.transformer."


def check_original_family(state_dict: dict[str, torch.Tensor], where: str) -> None:
    """Raise UserError unless `state_dict` is an SD 1.x single-file checkpoint (original layout)."""
    keys = state_dict.keys()

    def unsupported(kind: str) -> UserError:
        return UserError(f"{where}: looks like {kind} checkpoint, which is not supported yet (SD 1.x only)")

    if any(k.startswith("conditioner.embedders.") for k in keys) or f"{UNET}label_emb.0.0.weight" in keys:
        raise unsupported("an SDXL")
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        raise unsupported("an SD 2.x (OpenCLIP text encoder)")
    to_k = state_dict.get(f"{UNET}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight")
    if to_k is not None and to_k.shape[1] == 1024:
        raise unsupported("an SD 2.x (1024-wide text context)")
    conv_in = state_dict.get(f"{UNET}input_blocks.0.0.weight")
    if conv_in is not None and conv_in.shape[1] == 9:
        raise unsupported("an inpainting (9-channel UNet input)")
    if conv_in is not None and conv_in.shape[1] != 4:
        raise unsupported(f"a {conv_in.shape[1]}-channel-input (e.g. InstructPix2Pix)")
    if not any(k.startswith(UNET) for k in keys):
        if any(k.startswith(("lora_unet_", "lora_te_")) or ".lora_" in k for k in keys):
            raise UserError(f"{where}: is a LoRA adapter, not a full checkpoint; load a base model instead")
        if "encoder.conv_in.weight" in keys and "decoder.conv_out.weight" in keys:
            raise UserError(f"{where}: is a standalone VAE, not a full checkpoint; load a base model instead")
        raise UserError(f"{where}: not a Stable Diffusion checkpoint (no '{UNET}*' keys)")
    for prefix, name in ((VAE, "VAE"), (TEXT, "text encoder")):
        if not any(k.startswith(prefix) for k in keys):
            raise UserError(
                f"{where}: has no {name} weights ('{prefix}*' keys); a full SD 1.x checkpoint has them"
            )


def check_diffusers_family(model_index: dict, unet_config: dict, where: str) -> None:
    """Raise UserError unless a diffusers folder holds an SD 1.x text-to-image model."""
    pipeline = model_index.get("_class_name", "")
    if "XL" in pipeline or "text_encoder_2" in model_index:
        raise UserError(
            f"{where}: looks like an SDXL pipeline ({pipeline}), which is not supported yet (SD 1.x only)"
        )
    if unet_config.get("cross_attention_dim") == 1024:
        raise UserError(f"{where}: looks like an SD 2.x pipeline (1024-wide text context), not supported yet")
    if unet_config.get("in_channels", 4) == 9 or "Inpaint" in pipeline:
        raise UserError(
            f"{where}: looks like an inpainting pipeline ({pipeline}), which is not supported yet"
        )
    if unet_config.get("in_channels", 4) != 4:
        raise UserError(
            f"{where}: UNet takes {unet_config['in_channels']} input channels; only 4 is supported"
        )
