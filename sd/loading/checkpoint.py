"""A loaded Stable Diffusion model: its four components plus the noise schedule it was trained with and the
scheduler facts it ships for sampling (timestep spacing, steps_offset, set_alpha_to_one)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from sd.errors import UserError
from sd.samplers.base import check_prediction_type
from sd.samplers.spacing import SD15_TIMESTEPS, TimestepConfig
from sd.schedule import NoiseSchedule
from transformer.clip_text import CLIPTextModel
from transformer.clip_tokenizer import CLIPTokenizer
from unet.model import UNetModel
from vae.autoencoder import AutoencoderKL

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
SD1, SD2 = "SD 1.x", "SD 2.x"


@dataclass
class Checkpoint:
    tokenizer: CLIPTokenizer
    text_encoder: CLIPTextModel
    vae: AutoencoderKL
    unet: UNetModel
    schedule: NoiseSchedule
    name: str  # file or folder name, recorded in outputs' metadata
    prediction_type: str = "epsilon"  # what the UNet predicts: "epsilon" (noise) or "v_prediction"
    timestep_config: TimestepConfig = SD15_TIMESTEPS  # the spacing etc. its scheduler config names

    @property
    def family(self) -> str:
        """SD 2.x's text tower is OpenCLIP's (exact GELU); SD 1.x's is OpenAI's CLIP (quick-GELU)."""
        return SD2 if self.text_encoder.config.hidden_act == "gelu" else SD1


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def load_checkpoint(
    path: str | Path, dtype: str | torch.dtype = torch.float32, prediction_type: str | None = None
) -> Checkpoint:
    """Load an original single file (.safetensors/.ckpt) or a diffusers folder, in `dtype`.

    `prediction_type` ("epsilon" or "v_prediction") overrides what the checkpoint says or, for a single
    file that says nothing, what is guessed (sd/loading/detect.py).
    """
    from sd.loading.diffusers_folder import load_diffusers_folder
    from sd.loading.original import load_original

    path, dtype = Path(path), parse_dtype(dtype)
    if prediction_type is not None:
        check_prediction_type(prediction_type)
    if not path.exists():
        raise UserError(
            f"{path}: no such file or folder; pass a .safetensors or .ckpt file or a diffusers folder"
        )
    load = load_diffusers_folder if path.is_dir() else load_original
    return load(path, dtype, prediction_type)
