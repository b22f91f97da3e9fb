"""The reference side of the benchmarks: diffusers/transformers models holding *our* weights.

Both sides share the same tensors (diffusers' modules adopt ours with `assign=True`), so a full-size
comparison needs one copy of the weights, not two.
"""

from __future__ import annotations

import tempfile

import torch

from sd.errors import UserError
from sd.loading.checkpoint_types import Checkpoint
from sd.loading.diffusers_text_encoder import text_config_to_diffusers, text_encoder_to_diffusers
from sd.loading.diffusers_unet import unet_config_to_diffusers, unet_to_diffusers
from sd.loading.diffusers_vae import vae_config_to_diffusers, vae_to_diffusers
from sd.loading.tokenizer_files import save_tokenizer_folder

# Per diffusers scheduler class, the options that make it the sampler of ours with the same algorithm under
# a checkpoint's scheduler config (the sampler parity tests use this table too).
DPMPP_2M_OPTIONS = {
    "algorithm_type": "dpmsolver++",
    "solver_order": 2,
    "solver_type": "midpoint",
    "lower_order_final": True,
    "euler_at_final": False,
    "final_sigmas_type": "zero",
    "use_karras_sigmas": False,
}
SCHEDULER_OPTIONS = {
    "DDIMScheduler": {"clip_sample": False},
    "DPMSolverMultistepScheduler": DPMPP_2M_OPTIONS,
}


def require_references():
    try:
        import diffusers
        import transformers
    except ImportError:
        raise UserError("benchmarks compare against diffusers/transformers: pip install -e '.[test]'") from None
    return diffusers, transformers


def _public(config: dict) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def reference_unet(checkpoint: Checkpoint):
    diffusers, _ = require_references()
    config = checkpoint.unet.config
    with torch.device("meta"):
        unet = diffusers.UNet2DConditionModel(**_public(unet_config_to_diffusers(config)))
    unet.load_state_dict(unet_to_diffusers(checkpoint.unet.state_dict(), config), strict=True, assign=True)
    return unet.eval()


def reference_pipeline(checkpoint: Checkpoint, scheduler_class_name: str = "DDIMScheduler"):
    """diffusers' StableDiffusionPipeline around our weights, with the checkpoint's scheduler config."""
    diffusers, transformers = require_references()
    vae_config = checkpoint.vae.config
    with torch.device("meta"):
        vae = diffusers.AutoencoderKL(**_public(vae_config_to_diffusers(vae_config)))
    vae.load_state_dict(vae_to_diffusers(checkpoint.vae.state_dict(), vae_config), strict=True, assign=True)
    # Built on the CPU, not meta: it keeps a non-persistent `position_ids` buffer the state dict lacks.
    text_config, text_state = text_encoder_to_diffusers(checkpoint.text_encoder)  # SD 2.x: drops the unused layer
    text = transformers.CLIPTextModel(transformers.CLIPTextConfig(**text_config_to_diffusers(text_config)))
    text_state = {k.removeprefix("text_model."): v for k, v in text_state.items()}
    text.load_state_dict(text_state, strict=True, assign=True)  # transformers >= 5 drops `text_model.` in memory
    with tempfile.TemporaryDirectory() as folder:
        save_tokenizer_folder(checkpoint.tokenizer, folder)
        tokenizer = transformers.CLIPTokenizer.from_pretrained(folder)
    schedule = checkpoint.schedule
    scheduler_config = {
        "beta_start": schedule.beta_start, "beta_end": schedule.beta_end, "beta_schedule": schedule.beta_schedule,
        "num_train_timesteps": schedule.num_train_timesteps, "prediction_type": checkpoint.prediction_type,
        **checkpoint.timestep_config.to_diffusers(),  # no timestep_spacing: the class's default, as from_config
    }  # fmt: skip
    scheduler_class = getattr(diffusers, scheduler_class_name)
    scheduler = scheduler_class.from_config(scheduler_config, **SCHEDULER_OPTIONS.get(scheduler_class_name, {}))
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae.eval(), text_encoder=text.eval(), tokenizer=tokenizer, unet=reference_unet(checkpoint),
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe
