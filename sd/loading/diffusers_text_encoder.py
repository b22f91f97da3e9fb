"""Text encoder: our CLIPTextConfig <-> transformers' `text_encoder/config.json`, and its keys.

The keys are transformers' names, which ours mirror: `text_model.encoder.layers.0.self_attn.q_proj.weight`.
transformers >= 5 saves them without the `text_model.` level (`encoder.layers.0...`); files written by
older versions and SD 1.x single files keep it. Both load (`text_encoder_keys`). transformers' model
has no notion of skipping final layers, so layers our config skips (SD 2.x's last one) are left out of
a diffusers folder, as diffusers' own SD 2.x folders do: 23 layers whose last hidden state is ours.
"""

from __future__ import annotations

import dataclasses
import re

import torch

from sd.errors import UserError
from transformer.clip_text import CLIPTextConfig, CLIPTextModel

LAYER = re.compile(r"text_model\.encoder\.layers\.(\d+)\.")
TEXT_MODEL = "text_model."  # the level transformers >= 5 leaves out of saved keys


def text_encoder_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A transformers CLIPTextModel's weights, as any version saved them, under our names: `text_model.`
    added where missing, and the `position_ids` buffer (stored by old versions; ours computes it) left out."""
    return {
        key if key.startswith(TEXT_MODEL) else TEXT_MODEL + key: value
        for key, value in state_dict.items()
        if not key.endswith("position_ids")
    }


def text_encoder_to_diffusers(model: CLIPTextModel) -> tuple[CLIPTextConfig, dict[str, torch.Tensor]]:
    """(config, state dict) of the layers that run: skipped final layers dropped, nothing left to skip."""
    config = model.config
    kept = config.num_hidden_layers - config.skip_last_layers
    state = {
        k: v for k, v in model.state_dict().items() if not ((m := LAYER.match(k)) and int(m.group(1)) >= kept)
    }
    return dataclasses.replace(config, num_hidden_layers=kept, skip_last_layers=0), state


def text_config_to_diffusers(config: CLIPTextConfig) -> dict:
    if config.skip_last_layers:
        raise ValueError("transformers cannot skip layers: convert with text_encoder_to_diffusers first")
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k != "skip_last_layers"}
    return {
        "architectures": ["CLIPTextModel"],
        "model_type": "clip_text_model",
        **fields,
        "bos_token_id": 49406,
        "pad_token_id": 1,
        "projection_dim": config.hidden_size,
        "attention_dropout": 0.0,
        "dropout": 0.0,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "torch_dtype": "float32",
    }


def text_config_from_diffusers(d: dict) -> CLIPTextConfig:
    architectures = d.get("architectures") or ["CLIPTextModel"]
    if architectures[0] not in ("CLIPTextModel", "CLIPTextModelWithProjection"):
        raise UserError(f"text_encoder/config.json: architecture {architectures[0]} is not a CLIP text model")
    if d.get("hidden_act", "quick_gelu") not in ("quick_gelu", "gelu"):
        raise UserError(f"text_encoder/config.json: hidden_act {d['hidden_act']!r} is not supported")
    fields = {f.name for f in dataclasses.fields(CLIPTextConfig)}
    return CLIPTextConfig(**{k: v for k, v in d.items() if k in fields})
