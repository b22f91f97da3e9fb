"""The original single-file layout (CompVis/ldm): one state dict, components told apart by prefix.

    model.diffusion_model.*          -> UNet
    first_stage_model.*              -> VAE
    cond_stage_model.transformer.*   -> CLIP text encoder

Our modules carry the original names, so after stripping the prefix each part is a strict load.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from sd.atomic_output import atomic_output
from sd.errors import UserError
from sd.loading.checkpoint import Checkpoint
from sd.loading.config_json import config_from_dict, config_to_dict
from sd.loading.detect import TEXT, UNET, VAE, check_original_family
from sd.loading.infer_config import infer_text_config, infer_unet_config, infer_vae_config
from sd.loading.read import read_weights
from sd.loading.strict_load import strict_load
from sd.prune.plan import PLAN_KEY, PrunePlan
from sd.prune.surgery import build_pruned_unet
from sd.schedule import SD15_SCHEDULE
from transformer.clip_text import CLIPTextConfig, CLIPTextModel
from transformer.clip_tokenizer import default_tokenizer
from unet.config import UNetConfig
from vae.autoencoder import AutoencoderKL
from vae.config import VAEConfig

PREFIXES = {"unet": UNET, "vae": VAE, "text_encoder": TEXT}
CONFIG_KEY = "sd_from_scratch.configs"  # safetensors metadata entry holding our exports' configs


def split_original(state_dict: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Component state dicts with prefixes stripped; keys outside the three prefixes are ignored
    (schedule buffers, EMA copies), and so are text `position_ids` buffers."""
    parts: dict[str, dict[str, torch.Tensor]] = {name: {} for name in PREFIXES}
    for key, value in state_dict.items():
        for name, prefix in PREFIXES.items():
            if not key.startswith(prefix):
                continue
            sub = key[len(prefix) :]
            if name == "text_encoder":
                if sub.endswith("position_ids"):
                    break
                if not sub.startswith("text_model."):  # files saved by old transformers versions
                    sub = "text_model." + sub
            parts[name][sub] = value
            break
    return parts


def _configs(
    path: Path, parts: dict[str, dict[str, torch.Tensor]], metadata: dict[str, str]
) -> tuple[UNetConfig, VAEConfig, CLIPTextConfig]:
    """Configs stored by our export if present, else read off the tensor shapes."""
    stored = metadata.get(CONFIG_KEY)
    if stored:
        d = json.loads(stored)
        return (
            config_from_dict(UNetConfig, d["unet"], str(path)),
            config_from_dict(VAEConfig, d["vae"], str(path)),
            config_from_dict(CLIPTextConfig, d["text_encoder"], str(path)),
        )
    try:
        return (
            infer_unet_config(parts["unet"]),
            infer_vae_config(parts["vae"]),
            infer_text_config(parts["text_encoder"]),
        )
    except KeyError as error:
        raise UserError(f"{path}: incomplete checkpoint, key {error.args[0]} is missing") from None
    except ValueError as error:  # shapes that no SD 1.x-style config produces
        raise UserError(f"{path}: stores no config and its shapes fit none: {error}") from None


def load_original(path: Path, dtype: torch.dtype = torch.float32) -> Checkpoint:
    where = str(path)
    state_dict, metadata = read_weights(path)
    check_original_family(state_dict, where)
    if "alphas_cumprod" in state_dict:
        SD15_SCHEDULE.check_alphas_cumprod(state_dict["alphas_cumprod"], where)
    parts = split_original(state_dict)
    unet_cfg, vae_cfg, text_cfg = _configs(path, parts, metadata)
    plan = PrunePlan.from_json(metadata[PLAN_KEY], where) if PLAN_KEY in metadata else None  # a pruned UNet
    return Checkpoint(
        tokenizer=default_tokenizer(),
        text_encoder=strict_load(
            lambda: CLIPTextModel(text_cfg),
            parts["text_encoder"],
            f"{where} (text encoder, '{TEXT}*')",
            dtype,
        ),
        vae=strict_load(lambda: AutoencoderKL(vae_cfg), parts["vae"], f"{where} (VAE, '{VAE}*')", dtype),
        unet=strict_load(lambda: build_pruned_unet(unet_cfg, plan), parts["unet"], f"{where} (UNet, '{UNET}*')", dtype),
        schedule=SD15_SCHEDULE,
        name=path.name,
    )


def original_state_dict(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    """One state dict in the original layout (prefixes added back)."""
    modules = {"unet": checkpoint.unet, "vae": checkpoint.vae, "text_encoder": checkpoint.text_encoder}
    return {
        PREFIXES[name] + key: tensor.contiguous()
        for name, module in modules.items()
        for key, tensor in module.state_dict().items()
    }


def save_original(checkpoint: Checkpoint, path: str | Path, overwrite: bool = False) -> Path:
    """Write a single file in the original layout: .safetensors (configs in its metadata) or .ckpt."""
    path = Path(path)
    tensors = original_state_dict(checkpoint)
    configs = {
        "unet": config_to_dict(checkpoint.unet.config),
        "vae": config_to_dict(checkpoint.vae.config),
        "text_encoder": config_to_dict(checkpoint.text_encoder.config),
    }
    if path.suffix not in (".safetensors", ".ckpt"):
        raise UserError(f"{path}: use a .safetensors (preferred) or .ckpt file name")
    extra = {CONFIG_KEY: json.dumps(configs)}
    if getattr(checkpoint.unet, "prune_plan", None) is not None:  # the shapes a pruned UNet is rebuilt with
        extra[PLAN_KEY] = checkpoint.unet.prune_plan.to_json()
    with atomic_output(path, overwrite) as tmp:
        if path.suffix == ".ckpt":
            torch.save({"state_dict": tensors, **extra}, tmp)
        else:
            save_file(tensors, tmp, metadata={"format": "pt", **extra})
    return path
