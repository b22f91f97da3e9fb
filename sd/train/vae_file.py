"""The stage-1 autoencoder on disk: weights and config in one safetensors file, written and read here."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file

from sd.loading.config_json import config_from_dict, config_to_dict
from vae.autoencoder import AutoencoderKL
from vae.config import VAEConfig


def save_vae(model: AutoencoderKL, config: VAEConfig, path: Path) -> None:
    state = {k: v.contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, path, metadata={"config": json.dumps(config_to_dict(config))})


def load_vae(path: Path) -> AutoencoderKL:
    with safe_open(path, "pt") as f:
        config = config_from_dict(VAEConfig, json.loads(f.metadata()["config"]), str(path))
    vae = AutoencoderKL(config)
    vae.load_state_dict(load_file(path), strict=True)
    return vae.eval().requires_grad_(False)
