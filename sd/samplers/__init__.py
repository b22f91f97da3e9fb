"""The samplers of Stable Diffusion, by the names the CLI and the pipeline use.

Each one reproduces the diffusers scheduler of the same algorithm under SD 1.5's published scheduler config
(scaled-linear betas, "leading" spacing with steps_offset=1, set_alpha_to_one=False), value for value.
"""

from __future__ import annotations

import inspect

from sd.errors import UserError
from sd.samplers.base import Sampler
from sd.samplers.ddim import DDIMSampler
from sd.samplers.ddpm import DDPMSampler
from sd.samplers.dpmpp_2m import DPMSolverPlusPlus2MSampler
from sd.samplers.euler import EulerSampler
from sd.samplers.euler_ancestral import EulerAncestralSampler
from sd.samplers.lcm import LCMSampler
from sd.schedule import SD15_SCHEDULE, NoiseSchedule

SAMPLERS: dict[str, type] = {
    "ddpm": DDPMSampler,
    "ddim": DDIMSampler,
    "euler": EulerSampler,
    "euler_a": EulerAncestralSampler,
    "dpmpp_2m": DPMSolverPlusPlus2MSampler,
    "lcm": LCMSampler,  # few-step sampling of consistency-distilled models (LCM, LCM-LoRA)
}


def make_sampler(name: str, schedule: NoiseSchedule = SD15_SCHEDULE, **kwargs: object) -> Sampler:
    """The sampler called `name`; an unknown name or an option it does not take is the user's to fix."""
    if name not in SAMPLERS:
        raise UserError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    cls = SAMPLERS[name]
    options = [p for p in inspect.signature(cls).parameters if p != "schedule"]
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise UserError(f"sampler {name!r} takes no option {unknown[0]!r}; its options: {', '.join(options)}")
    return cls(schedule, **kwargs)


__all__ = ["SAMPLERS", "Sampler", "make_sampler"]
