"""A small model on disk: weights (fp16 by default) and its config dataclass in one safetensors file.

The educational models (`unet/segmentation`, `transformer/translation`, `vae/plain`) ship this way, so a
notebook or test rebuilds the exact architecture from the file alone and loads it strictly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from sd.atomic_output import atomic_output
from sd.errors import UserError
from sd.loading.config_json import config_from_dict, config_to_dict

M = TypeVar("M", bound=nn.Module)


def save_model(model: nn.Module, config: object, path: Path, dtype: torch.dtype = torch.float16) -> None:
    state = {k: v.detach().to(dtype).contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_output(path, overwrite=True) as tmp:
        save_file(state, tmp, metadata={"config": json.dumps(config_to_dict(config))})


def load_model(model_cls: type[M], config_cls: type, path: str | Path) -> M:
    """`model_cls(config)` with the file's weights (in fp32), in eval mode and frozen."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such weights file; train one first (see the module's docstring)")
    with safe_open(path, "pt") as f:
        metadata = f.metadata() or {}
    if "config" not in metadata:
        raise UserError(f"{path}: no config in the file's metadata; it was not written by save_model")
    model = model_cls(config_from_dict(config_cls, json.loads(metadata["config"]), str(path)))
    model.load_state_dict({k: v.float() for k, v in load_file(path).items()}, strict=True)
    return model.eval().requires_grad_(False)
