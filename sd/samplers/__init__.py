"""The samplers of Stable Diffusion, by the names the CLI and the pipeline use.

Each one reproduces the diffusers scheduler of the same algorithm, value for value, under the scheduler config
a checkpoint ships: its noise schedule (sd/schedule.py) and its timestep facts (spacing.py). With SD 1.5's
published config that is the scheduler a diffusers user gets from `X.from_config(pipe.scheduler.config)`.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING

from sd.errors import UserError
from sd.samplers.spacing import SD15_TIMESTEPS, TimestepConfig

if TYPE_CHECKING:
    from sd.samplers.base import Sampler
    from sd.schedule import NoiseSchedule

# name -> (module, class), imported when first used: the CLI lists the names without importing torch
SAMPLERS: dict[str, tuple[str, str]] = {
    "ddpm": ("sd.samplers.ddpm", "DDPMSampler"),
    "ddim": ("sd.samplers.ddim", "DDIMSampler"),
    "euler": ("sd.samplers.euler", "EulerSampler"),
    "euler_a": ("sd.samplers.euler_ancestral", "EulerAncestralSampler"),
    "dpmpp_2m": ("sd.samplers.dpmpp_2m", "DPMSolverPlusPlus2MSampler"),
    "lcm": ("sd.samplers.lcm", "LCMSampler"),  # few-step sampling of consistency-distilled models (LCM, LCM-LoRA)
    "tcd": ("sd.samplers.tcd", "TCDSampler"),  # LCM's timesteps, with eta (gamma) setting how much noise is fresh
}

# The diffusers scheduler each sampler reproduces, by the `_class_name` a folder's scheduler_config.json names.
DIFFUSERS_SCHEDULERS = {
    "DDPMScheduler": "ddpm", "DDIMScheduler": "ddim", "EulerDiscreteScheduler": "euler",
    "EulerAncestralDiscreteScheduler": "euler_a", "DPMSolverMultistepScheduler": "dpmpp_2m", "LCMScheduler": "lcm",
    "TCDScheduler": "tcd",
}  # fmt: skip

NOT_OPTIONS = ("schedule", "timestep_config")  # the checkpoint's facts, not a user's choice


def sampler_class(name: str) -> type:
    if name not in SAMPLERS:
        raise UserError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    module, cls = SAMPLERS[name]
    return getattr(importlib.import_module(module), cls)


def options_of(name: str) -> list[str]:
    """The options sampler `name` takes from the user (e.g. DDIM's and TCD's eta)."""
    return [p for p in inspect.signature(sampler_class(name)).parameters if p not in NOT_OPTIONS]


def make_sampler(
    name: str,
    schedule: NoiseSchedule | None = None,
    timestep_config: TimestepConfig = SD15_TIMESTEPS,
    **kwargs: object,
) -> Sampler:
    """The sampler called `name`; an unknown name or an option it does not take is the user's to fix.
    `schedule` defaults to SD 1.5's; `timestep_config` goes to the samplers that space their steps (not LCM,
    which has its own grid)."""
    from sd.schedule import SD15_SCHEDULE

    schedule = SD15_SCHEDULE if schedule is None else schedule
    cls, options = sampler_class(name), options_of(name)
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise UserError(f"sampler {name!r} takes no option {unknown[0]!r}; its options: {', '.join(options)}")
    if "timestep_config" in inspect.signature(cls).parameters:
        kwargs["timestep_config"] = timestep_config
    return cls(schedule, **kwargs)


def spacing_of(name: str, timestep_config: TimestepConfig) -> str | None:
    """The spacing sampler `name` runs with under `timestep_config` (its diffusers default if that names none);
    None for a sampler whose timesteps follow no spacing rule (LCM: its distillation grid)."""
    default = sampler_class(name).default_spacing
    return None if default is None else timestep_config.spacing_or(default)


__all__ = ["SAMPLERS", "make_sampler", "spacing_of"]
