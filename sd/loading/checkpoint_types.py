"""A loaded Stable Diffusion model: its four components, the noise schedule it was trained with, and its family.

A leaf: the loaders (original.py, diffusers_folder.py) build it, everything downstream reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sd.samplers.spacing import SD15_TIMESTEPS, TimestepConfig

if TYPE_CHECKING:  # annotations only: the CLI reads SamplingDefaults without importing torch
    from sd.schedule import NoiseSchedule
    from transformer.clip_text import CLIPTextModel
    from transformer.clip_tokenizer import CLIPTokenizer
    from unet.model import UNetModel
    from vae.autoencoder import AutoencoderKL

# The families this stack runs. They differ by the text encoder: SD 1.x has OpenAI's CLIP (quick-GELU,
# stored under transformers' names), SD 2.x OpenCLIP's (exact GELU, OpenCLIP's names in a single file).
SD1, SD2 = "SD 1.x", "SD 2.x"
FAMILIES = (SD1, SD2)


@dataclass(frozen=True)
class SamplingDefaults:
    """How a model is meant to be sampled when the user names no sampler, steps or guidance: a distilled
    student's few LCM steps without guidance (sd/loading/student.py), where the commands' own defaults
    (25-50 guided steps) would waste its point; or a diffusers folder's scheduler class (its sampler alone,
    as `StableDiffusionPipeline.from_pretrained` picks it). None: the command's own default. A student also
    carries how its GIFs' even spacing spends renders (--snap, --rounds): it is chosen for speed."""

    sampler: str
    steps: int | None = None
    guidance: float | None = None
    snap: float | None = None
    rounds: int | None = None


@dataclass
class Checkpoint:
    tokenizer: CLIPTokenizer
    text_encoder: CLIPTextModel
    vae: AutoencoderKL
    unet: UNetModel
    schedule: NoiseSchedule
    name: str  # file or folder name, recorded in outputs' metadata
    family: str  # SD1 or SD2, as the loader read it off the file (it decides the layout a single file is saved in)
    prediction_type: str = "epsilon"  # what the UNet predicts: "epsilon" (noise) or "v_prediction"
    defaults: SamplingDefaults | None = None  # None: the commands' own defaults apply
    timestep_config: TimestepConfig = SD15_TIMESTEPS  # the spacing etc. its scheduler config names

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family {self.family!r} is not one of {FAMILIES}")
