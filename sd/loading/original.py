"""The original single-file layout (CompVis/ldm): one state dict, components told apart by prefix.

    model.diffusion_model.*          -> UNet
    first_stage_model.*              -> VAE
    cond_stage_model.transformer.*   -> CLIP text encoder (SD 1.x)
    cond_stage_model.model.*         -> OpenCLIP text encoder (SD 2.x), renamed by open_clip_text.py

Our modules carry the original names, so after stripping the prefix each part is a strict load (the
SD 2.x text encoder after a rule-based rename from OpenCLIP's names).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from sd.atomic_output import atomic_output
from sd.errors import UserError
from sd.loading.checkpoint_types import SD1, SD2, Checkpoint
from sd.loading.config_json import config_from_dict, config_to_dict
from sd.loading.detect import TEXT_PREFIXES, UNET, VAE, check_original_family, single_file_prediction_type
from sd.loading.diffusers_text_encoder import text_encoder_keys
from sd.loading.infer_config import infer_text_config, infer_unet_config, infer_vae_config
from sd.loading.open_clip_text import open_clip_to_transformers, transformers_to_open_clip
from sd.loading.read import read_weights
from sd.loading.strict_load import strict_load
from sd.loading.tokenizer_files import default_tokenizer
from sd.samplers.spacing import LEADING_SD15, SD15_TIMESTEPS, TimestepConfig
from sd.schedule import SD15_SCHEDULE
from transformer.clip_text import CLIPTextConfig, CLIPTextModel
from transformer.clip_tokenizer import EOS_TOKEN, OPEN_CLIP_PAD_TOKEN
from unet.config import UNetConfig
from unet.pruned import PrunePlan, build_pruned_unet
from vae.autoencoder import AutoencoderKL
from vae.config import VAEConfig

CONFIG_KEY = "sd_from_scratch.configs"  # safetensors metadata entry holding our exports' configs
PLAN_KEY = "sd_from_scratch.prune_plan"  # and a pruned UNet's plan, which its shapes are rebuilt from
PAD_TOKENS = {SD1: EOS_TOKEN, SD2: OPEN_CLIP_PAD_TOKEN}
NATIVE_SIZE = {"epsilon": 512, "v_prediction": 768}  # SD 2.x-base and SD 2.x (768-v) were trained at these


def prefixes(family: str = SD1) -> dict[str, str]:
    return {"unet": UNET, "vae": VAE, "text_encoder": TEXT_PREFIXES[family]}


def split_original(state_dict: dict[str, torch.Tensor], family: str = SD1) -> dict[str, dict[str, torch.Tensor]]:
    """Component state dicts with prefixes stripped; keys outside the three prefixes are ignored
    (schedule buffers, EMA copies), and so are text `position_ids` buffers."""
    parts: dict[str, dict[str, torch.Tensor]] = {name: {} for name in prefixes(family)}
    for key, value in state_dict.items():
        for name, prefix in prefixes(family).items():
            if not key.startswith(prefix):
                continue
            parts[name][key[len(prefix) :]] = value
            break
    text = parts["text_encoder"]  # SD 1.x: transformers' names, with or without `text_model.`; SD 2.x: OpenCLIP's
    parts["text_encoder"] = open_clip_to_transformers(text) if family == SD2 else text_encoder_keys(text)
    return parts


def _configs(
    path: Path, parts: dict[str, dict[str, torch.Tensor]], metadata: dict[str, str], family: str
) -> tuple[UNetConfig, VAEConfig, CLIPTextConfig, str | None, TimestepConfig]:
    """Configs (and prediction type, timestep facts) stored by our export if present, else read off the tensor
    shapes. A plain file's timesteps are SD 1.5's published config's; our exports from before the spacing was
    recorded were all made with leading spacing (the shipped models among them), so they keep it."""
    stored = metadata.get(CONFIG_KEY)
    if stored:
        d = json.loads(stored)
        return (
            config_from_dict(UNetConfig, d["unet"], str(path)),
            config_from_dict(VAEConfig, d["vae"], str(path)),
            config_from_dict(CLIPTextConfig, d["text_encoder"], str(path)),
            d.get("prediction_type", "epsilon"),
            config_from_dict(TimestepConfig, d["timesteps"], str(path)) if "timesteps" in d else LEADING_SD15,
        )
    try:
        return (
            infer_unet_config(parts["unet"], family),
            infer_vae_config(parts["vae"]),
            infer_text_config(parts["text_encoder"], family),
            None,
            SD15_TIMESTEPS,
        )
    except KeyError as error:
        raise UserError(f"{path}: incomplete checkpoint, key {error.args[0]} is missing") from None
    except ValueError as error:  # shapes that no SD 1.x-style config produces
        raise UserError(f"{path}: stores no config and its shapes fit none: {error}") from None


def _unet_builder(config: UNetConfig, metadata: dict[str, str], where: str) -> Callable[[], nn.Module]:
    """What builds the file's UNet: of `config`, pruned as the plan stored with a pruned UNet says."""
    try:
        plan = PrunePlan.from_json(metadata[PLAN_KEY]) if PLAN_KEY in metadata else None
    except ValueError as error:
        raise UserError(f"{where}: {error}") from None

    def build() -> nn.Module:
        try:
            return build_pruned_unet(config, plan)
        except ValueError as error:  # a stored plan that does not fit the stored config
            raise UserError(f"{where}: prune plan: {error}") from None

    return build


def load_original(path: Path, dtype: torch.dtype = torch.float32, prediction_type: str | None = None) -> Checkpoint:
    """`prediction_type` overrides the stored or guessed one (see detect.single_file_prediction_type)."""
    where = str(path)
    state_dict, metadata = read_weights(path)
    family = check_original_family(state_dict, where)
    if "alphas_cumprod" in state_dict:
        SD15_SCHEDULE.check_alphas_cumprod(state_dict["alphas_cumprod"], where)
    parts = split_original(state_dict, family)
    unet_cfg, vae_cfg, text_cfg, stored_prediction, timestep_config = _configs(path, parts, metadata, family)
    guessed = stored_prediction or single_file_prediction_type(family, metadata.get("global_step"))
    prediction_type = prediction_type or guessed
    if stored_prediction is None and family == SD2:
        vae_cfg = dataclasses.replace(vae_cfg, resolution=NATIVE_SIZE[prediction_type])
    text_prefix = TEXT_PREFIXES[family]
    return Checkpoint(
        tokenizer=default_tokenizer(PAD_TOKENS[family]),
        text_encoder=strict_load(
            lambda: CLIPTextModel(text_cfg),
            parts["text_encoder"],
            f"{where} (text encoder, '{text_prefix}*')",
            dtype,
        ),
        vae=strict_load(lambda: AutoencoderKL(vae_cfg), parts["vae"], f"{where} (VAE, '{VAE}*')", dtype),
        unet=strict_load(_unet_builder(unet_cfg, metadata, where), parts["unet"], f"{where} (UNet, '{UNET}*')", dtype),
        schedule=SD15_SCHEDULE,
        name=path.name,
        family=family,
        prediction_type=prediction_type,
        timestep_config=timestep_config,
    )


def original_state_dict(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    """One state dict in the original layout (prefixes added back; SD 2.x text keys in OpenCLIP's names)."""
    family = checkpoint.family
    parts = {name: getattr(checkpoint, name).state_dict() for name in ("unet", "vae", "text_encoder")}
    if family == SD2:
        parts["text_encoder"] = transformers_to_open_clip(parts["text_encoder"])
    names = prefixes(family)
    return {names[name] + key: tensor.contiguous() for name, part in parts.items() for key, tensor in part.items()}


def save_original(checkpoint: Checkpoint, path: str | Path, overwrite: bool = False) -> Path:
    """Write a single file in the original layout: .safetensors (configs in its metadata) or .ckpt. The
    metadata carries the timestep facts too, so the file samples as the checkpoint it was written from."""
    path = Path(path)
    tensors = original_state_dict(checkpoint)
    configs = {
        "unet": config_to_dict(checkpoint.unet.config),
        "vae": config_to_dict(checkpoint.vae.config),
        "text_encoder": config_to_dict(checkpoint.text_encoder.config),
        "prediction_type": checkpoint.prediction_type,
        "timesteps": config_to_dict(checkpoint.timestep_config),
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
