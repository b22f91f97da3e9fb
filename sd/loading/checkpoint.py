"""A loaded Stable Diffusion model: its four components plus the noise schedule it was trained with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from sd.errors import UserError
from sd.schedule import NoiseSchedule
from transformer.clip_text import CLIPTextModel
from transformer.clip_tokenizer import CLIPTokenizer
from unet.model import UNetModel
from vae.autoencoder import AutoencoderKL

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class Checkpoint:
    tokenizer: CLIPTokenizer
    text_encoder: CLIPTextModel
    vae: AutoencoderKL
    unet: UNetModel
    schedule: NoiseSchedule
    name: str  # file or folder name, recorded in outputs' metadata


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def load_checkpoint(path: str | Path, dtype: str | torch.dtype = torch.float32) -> Checkpoint:
    """Load an original single file (.safetensors/.ckpt) or a diffusers folder, in `dtype`."""
    from sd.loading.diffusers_folder import load_diffusers_folder
    from sd.loading.original import load_original

    path, dtype = Path(path), parse_dtype(dtype)
    if not path.exists():
        raise UserError(
            f"{path}: no such file or folder; pass a .safetensors or .ckpt file or a diffusers folder"
        )
    return load_diffusers_folder(path, dtype) if path.is_dir() else load_original(path, dtype)
