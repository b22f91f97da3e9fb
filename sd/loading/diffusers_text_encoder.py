"""Text encoder: our CLIPTextConfig <-> transformers' `text_encoder/config.json`.

The keys need no conversion: both layouts use transformers' `text_model.*` names.
"""

from __future__ import annotations

import dataclasses

from sd.errors import UserError
from transformer.clip_text import CLIPTextConfig


def text_config_to_diffusers(config: CLIPTextConfig) -> dict:
    return {
        "architectures": ["CLIPTextModel"],
        "model_type": "clip_text_model",
        **dataclasses.asdict(config),
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
