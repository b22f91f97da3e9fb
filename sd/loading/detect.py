"""Tell SD 1.x from SD 2.x checkpoints, recognise those this stack cannot run yet, and say what they look like.

Better one clear line ("this looks like SDXL") than a wall of missing keys.

SD 1.x and 2.x differ by the text encoder. In a diffusers folder its config says GELU (OpenCLIP, SD 2.x) or
quick-GELU (OpenAI's CLIP, SD 1.x); in a single file it is OpenAI's CLIP stored with transformers'
names under `cond_stage_model.transformer.`, or OpenCLIP's under `cond_stage_model.model.` (and a
1024-wide UNet context). What a file cannot tell is whether its UNet predicts the noise (epsilon: SD 1.x,
SD 2.x-base at 512x512) or v (SD 2.x at 768x768): `single_file_prediction_type` guesses as diffusers does.
"""

from __future__ import annotations

import torch

from sd.errors import UserError
from sd.loading.checkpoint_types import SD1, SD2

UNET = "model.diffusion_model."
VAE = "first_stage_model."
TEXT = "cond_stage_model.transformer."
OPEN_CLIP_TEXT = "cond_stage_model.model."
TEXT_PREFIXES = {SD1: TEXT, SD2: OPEN_CLIP_TEXT}
SD2_BASE_GLOBAL_STEP = 875000  # the training step stored in SD 2.0-base / 2.1-base's .ckpt files


def check_original_family(state_dict: dict[str, torch.Tensor], where: str) -> str:
    """SD1 or SD2 for a single-file checkpoint (original layout); UserError for anything else."""
    keys = state_dict.keys()

    def unsupported(kind: str) -> UserError:
        return UserError(f"{where}: looks like {kind} checkpoint, which is not supported yet (SD 1.x and 2.x only)")

    if any(k.startswith("conditioner.embedders.") for k in keys):
        raise unsupported("an SDXL")
    if f"{UNET}label_emb.0.0.weight" in keys:
        raise unsupported("an image- or class-conditioned (e.g. SD 2.x unCLIP, 'label_emb')")
    to_k = state_dict.get(f"{UNET}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight")
    wide_context = to_k is not None and to_k.shape[1] == 1024
    family = SD2 if wide_context or any(k.startswith(OPEN_CLIP_TEXT) for k in keys) else SD1
    conv_in = state_dict.get(f"{UNET}input_blocks.0.0.weight")
    if conv_in is not None and conv_in.shape[1] == 9:
        raise unsupported(f"an {family} inpainting (9-channel UNet input)")
    if conv_in is not None and conv_in.shape[1] != 4:
        raise unsupported(f"a {conv_in.shape[1]}-channel-input (e.g. depth-to-image, upscaler, InstructPix2Pix)")
    if not any(k.startswith(UNET) for k in keys):
        if any(k.startswith(("lora_unet_", "lora_te_")) or ".lora_" in k for k in keys):
            raise UserError(f"{where}: is a LoRA adapter, not a full checkpoint; load a base model instead")
        if "encoder.conv_in.weight" in keys and "decoder.conv_out.weight" in keys:
            raise UserError(f"{where}: is a standalone VAE, not a full checkpoint; load a base model instead")
        raise UserError(f"{where}: not a Stable Diffusion checkpoint (no '{UNET}*' keys)")
    for prefix, name in ((VAE, "VAE"), (TEXT_PREFIXES[family], "text encoder")):
        if not any(k.startswith(prefix) for k in keys):
            raise UserError(
                f"{where}: has no {name} weights ('{prefix}*' keys); a full {family} checkpoint has them"
            )
    return family


def single_file_prediction_type(family: str, global_step: str | None) -> str:
    """What a single file's UNet predicts, when nothing stored says so: diffusers' guess.

    SD 1.x: epsilon. SD 2.x: v, except for a .ckpt stopped at SD 2.x-base's last training step. A
    .safetensors file keeps no step, so SD 2.1-base as .safetensors needs `--prediction-type epsilon`.
    """
    if family == SD1:
        return "epsilon"
    return "epsilon" if global_step == str(SD2_BASE_GLOBAL_STEP) else "v_prediction"


def check_diffusers_family(model_index: dict, unet_config: dict, text_config: dict, where: str) -> str:
    """SD1 or SD2 for a diffusers folder, by its text encoder's activation (OpenCLIP's exact GELU: SD 2.x);
    UserError unless it holds an SD 1.x or 2.x text-to-image model."""
    pipeline = model_index.get("_class_name", "")
    if "XL" in pipeline or "text_encoder_2" in model_index:
        raise UserError(
            f"{where}: looks like an SDXL pipeline ({pipeline}), which is not supported yet (SD 1.x and 2.x only)"
        )
    if unet_config.get("in_channels", 4) == 9 or "Inpaint" in pipeline:
        raise UserError(
            f"{where}: looks like an inpainting pipeline ({pipeline}), which is not supported yet"
        )
    if unet_config.get("in_channels", 4) != 4:
        raise UserError(
            f"{where}: UNet takes {unet_config['in_channels']} input channels; only 4 is supported"
        )
    return SD2 if text_config.get("hidden_act") == "gelu" else SD1
