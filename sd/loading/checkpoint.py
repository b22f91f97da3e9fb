"""Loading a checkpoint, whatever its layout: an original single file or a diffusers folder (the types are in
checkpoint_types.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from sd.errors import UserError
from sd.loading.checkpoint_types import Checkpoint
from sd.loading.diffusers_folder import load_diffusers_folder
from sd.loading.dtype_names import DTYPE_NAMES
from sd.loading.original import load_original
from sd.loading.student import load_student, student_info
from sd.samplers.base import check_prediction_type

DTYPES = {name: getattr(torch, attribute) for name, attribute in DTYPE_NAMES.items()}


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
    path, dtype = Path(path), parse_dtype(dtype)
    if prediction_type is not None:
        check_prediction_type(prediction_type)
    if not path.exists():
        raise UserError(
            f"{path}: no such file or folder; pass a .safetensors or .ckpt file or a diffusers folder"
        )
    if path.is_dir():
        return load_diffusers_folder(path, dtype, prediction_type)
    if student_info(path) is not None:  # a UNet-only distilled student: its base model with this UNet
        return load_student(path, dtype, prediction_type)
    return load_original(path, dtype, prediction_type)
