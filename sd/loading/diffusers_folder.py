"""diffusers' folder layout: one sub-folder per component, each with a config.json and weights.

    model_index.json  unet/  vae/  text_encoder/  tokenizer/  scheduler/

UNet and VAE keys are renamed to the original layout (rules generated from the config); the text
encoder's keys are already transformers' names, which ours mirror. What the UNet predicts (epsilon or v)
is the scheduler config's `prediction_type`; its `timestep_spacing`, `steps_offset` and `set_alpha_to_one`
pick the timesteps the samplers visit (sd/samplers/spacing.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from sd.atomic_output import atomic_output
from sd.errors import UserError
from sd.json_file import read_json
from sd.loading.checkpoint_types import Checkpoint, SamplingDefaults
from sd.loading.detect import check_diffusers_family
from sd.loading.diffusers_text_encoder import (
    text_config_from_diffusers,
    text_config_to_diffusers,
    text_encoder_keys,
    text_encoder_to_diffusers,
)
from sd.loading.diffusers_unet import (
    unet_config_from_diffusers,
    unet_config_to_diffusers,
    unet_from_diffusers,
    unet_to_diffusers,
)
from sd.loading.diffusers_vae import (
    vae_config_from_diffusers,
    vae_config_to_diffusers,
    vae_from_diffusers,
    vae_to_diffusers,
)
from sd.loading.read import read_state_dict
from sd.loading.strict_load import strict_load
from sd.loading.tokenizer_files import load_tokenizer_folder, save_tokenizer_folder
from sd.samplers import DIFFUSERS_SCHEDULERS
from sd.samplers.base import check_prediction_type
from sd.samplers.lcm import LCMSampler
from sd.samplers.spacing import TimestepConfig
from sd.schedule import NoiseSchedule
from transformer.clip_text import CLIPTextModel
from unet.model import UNetModel
from vae.autoencoder import AutoencoderKL

NEEDED = "missing; a diffusers folder needs it"  # the message for a missing config file
DIFFUSERS_VERSION = "0.42.1"  # the version the export was checked against (tests/sd/test_export.py)


def read_component_weights(folder: Path, stems: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """A component's weights: safetensors preferred over .bin, full precision over an fp16 variant,
    and sharded files (`*.index.json`) merged."""
    for suffix in (".safetensors", ".fp16.safetensors", ".bin", ".fp16.bin"):
        for stem in stems:
            single = folder / f"{stem}{suffix}"
            if single.is_file():
                return read_state_dict(single)
            index = folder / f"{stem}{suffix}.index.json"
            if index.is_file():
                shards = sorted(set(read_json(index, NEEDED).get("weight_map", {}).values()))
                merged: dict[str, torch.Tensor] = {}
                for shard in shards:
                    merged.update(read_state_dict(folder / shard))
                return merged
    names = ", ".join(f"{s}.safetensors" for s in stems)
    raise UserError(f"{folder}: no weights found (expected {names} or .bin)")


def schedule_from_diffusers(d: dict, where: str) -> NoiseSchedule:
    if d.get("trained_betas") is not None:
        raise UserError(f"{where}: explicit trained_betas are not supported")
    return NoiseSchedule(
        beta_start=d.get("beta_start", 0.00085),
        beta_end=d.get("beta_end", 0.012),
        num_train_timesteps=d.get("num_train_timesteps", 1000),
        beta_schedule=d.get("beta_schedule", "scaled_linear"),
    )


def timestep_config_from_diffusers(d: dict, where: str) -> TimestepConfig:
    try:
        return TimestepConfig.from_diffusers(d)
    except UserError as error:
        raise UserError(f"{where}: {error}") from None


def folder_sampling_defaults(folder: Path) -> SamplingDefaults | None:
    """The sampler of the folder's scheduler class (an SD-Turbo folder's EulerDiscreteScheduler: euler), as
    diffusers' pipeline samples with it; None for a class no sampler here reproduces (SD 1.5's PNDM)."""
    config = folder / "scheduler" / "scheduler_config.json"
    if not (folder / "model_index.json").is_file() or not config.is_file():
        return None
    sampler = DIFFUSERS_SCHEDULERS.get(read_json(config, NEEDED).get("_class_name"))
    return SamplingDefaults(sampler) if sampler else None


def load_diffusers_folder(
    folder: Path, dtype: torch.dtype = torch.float32, prediction_type: str | None = None
) -> Checkpoint:
    """`prediction_type` overrides the scheduler config's."""
    if not (folder / "model_index.json").is_file():
        raise UserError(f"{folder}: not a diffusers folder (no model_index.json); or pass a checkpoint file")
    model_index = read_json(folder / "model_index.json", NEEDED)
    unet_json = read_json(folder / "unet" / "config.json", NEEDED)
    text_json = read_json(folder / "text_encoder" / "config.json", NEEDED)
    family = check_diffusers_family(model_index, unet_json, text_json, str(folder))

    unet_cfg = unet_config_from_diffusers(unet_json)
    vae_cfg = vae_config_from_diffusers(read_json(folder / "vae" / "config.json", NEEDED))
    text_cfg = text_config_from_diffusers(text_json)
    schedule_json = folder / "scheduler" / "scheduler_config.json"
    schedule_dict = read_json(schedule_json, NEEDED)
    schedule = schedule_from_diffusers(schedule_dict, str(schedule_json))
    stored = schedule_dict.get("prediction_type", "epsilon")
    prediction_type = prediction_type or check_prediction_type(stored, str(schedule_json))
    timestep_config = timestep_config_from_diffusers(schedule_dict, str(schedule_json))

    unet_sd = unet_from_diffusers(
        read_component_weights(folder / "unet", ("diffusion_pytorch_model",)), unet_cfg
    )
    vae_sd = vae_from_diffusers(read_component_weights(folder / "vae", ("diffusion_pytorch_model",)), vae_cfg)
    text_sd = text_encoder_keys(read_component_weights(folder / "text_encoder", ("model", "pytorch_model")))
    return Checkpoint(
        tokenizer=load_tokenizer_folder(folder / "tokenizer"),
        text_encoder=strict_load(lambda: CLIPTextModel(text_cfg), text_sd, f"{folder}/text_encoder", dtype),
        vae=strict_load(lambda: AutoencoderKL(vae_cfg), vae_sd, f"{folder}/vae", dtype),
        unet=strict_load(lambda: UNetModel(unet_cfg), unet_sd, f"{folder}/unet", dtype),
        schedule=schedule,
        name=folder.name,
        family=family,
        prediction_type=prediction_type,
        timestep_config=timestep_config,
    )


def _write_component(folder: Path, config: dict, weights: dict[str, torch.Tensor], file_name: str) -> None:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file({k: v.contiguous() for k, v in weights.items()}, folder / file_name, metadata={"format": "pt"})


def scheduler_config(checkpoint: Checkpoint) -> dict:
    """SD 1.5's published scheduler config with this checkpoint's schedule and timestep facts (no timestep_spacing
    when the checkpoint names none); for a model sampled with LCM by default (a distilled student), diffusers'
    LCMScheduler on the same schedule, as `LCMScheduler.from_config` of SD 1.5's config builds it."""
    schedule = checkpoint.schedule
    config = {
        "_class_name": "PNDMScheduler",
        "beta_start": schedule.beta_start,
        "beta_end": schedule.beta_end,
        "beta_schedule": schedule.beta_schedule,
        "num_train_timesteps": schedule.num_train_timesteps,
        "clip_sample": False,
        "skip_prk_steps": True,
        "prediction_type": checkpoint.prediction_type,
        "trained_betas": None,
        **checkpoint.timestep_config.to_diffusers(),
    }
    if checkpoint.defaults is None or checkpoint.defaults.sampler != "lcm":
        return config
    lcm = LCMSampler(schedule)
    del config["skip_prk_steps"]
    return config | {"_class_name": "LCMScheduler", "original_inference_steps": lcm.original_inference_steps,
                     "timestep_scaling": lcm.timestep_scaling}  # fmt: skip


def save_diffusers_folder(checkpoint: Checkpoint, folder: str | Path, overwrite: bool = False) -> Path:
    """Write a folder that diffusers' `StableDiffusionPipeline.from_pretrained` loads."""
    folder = Path(folder)
    if getattr(checkpoint.unet, "prune_plan", None) is not None:
        raise UserError(f"{folder}: a pruned UNet has no diffusers layout (diffusers' blocks have no separate hidden "
                        "width, head count or FF width); save it as a .safetensors file instead")  # fmt: skip
    unet_cfg, vae_cfg = checkpoint.unet.config, checkpoint.vae.config
    with atomic_output(folder, overwrite) as tmp:
        tmp.mkdir()
        model_index = {
            "_class_name": "StableDiffusionPipeline",
            "_diffusers_version": DIFFUSERS_VERSION,
            "feature_extractor": [None, None],
            "requires_safety_checker": False,
            "safety_checker": [None, None],
            "scheduler": ["diffusers", "PNDMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        }
        scheduler = scheduler_config(checkpoint)
        model_index["scheduler"] = ["diffusers", scheduler["_class_name"]]
        (tmp / "model_index.json").write_text(json.dumps(model_index, indent=2) + "\n")
        (tmp / "scheduler").mkdir()
        (tmp / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler, indent=2) + "\n")
        _write_component(
            tmp / "unet",
            {**unet_config_to_diffusers(unet_cfg), "sample_size": vae_cfg.resolution // vae_cfg.downsample_factor},
            unet_to_diffusers(checkpoint.unet.state_dict(), unet_cfg),
            "diffusion_pytorch_model.safetensors",
        )
        _write_component(
            tmp / "vae",
            vae_config_to_diffusers(vae_cfg),
            vae_to_diffusers(checkpoint.vae.state_dict(), vae_cfg),
            "diffusion_pytorch_model.safetensors",
        )
        text_cfg, text_state = text_encoder_to_diffusers(checkpoint.text_encoder)  # SD 2.x: 23 of 24 layers
        _write_component(tmp / "text_encoder", text_config_to_diffusers(text_cfg), text_state, "model.safetensors")
        save_tokenizer_folder(checkpoint.tokenizer, tmp / "tokenizer")
    return folder
