"""Which of the 1000 training timesteps a sampler visits, and the scheduler facts a checkpoint ships for it.

With N steps and T = 1000 training timesteps, diffusers' three spacings (Lin et al. 2023, "Common Diffusion
Noise Schedules and Sample Steps are Flawed", table 2) are

    leading   t_i = i * (T // N) + steps_offset           i = N-1, ..., 0   (4 steps, offset 1: 751 501 251 1)
    linspace  t_i = i * (T - 1) / (N - 1)                 i = N-1, ..., 0   (4 steps: 999 666 333 0)
    trailing  t_i = round(T - i * T / N) - 1              i = 0, ..., N-1   (4 steps: 999 749 499 249)

Only "leading" uses steps_offset. "Leading" never visits t = 999 (50 steps start at 981), so a model whose
sampling must start from pure noise (SD-Turbo) is run with "trailing". DDIM, DDPM and DPM-Solver++ round
linspace's fractional t to integers; Euler keeps them (see each sampler). One linspace step is t = 0.

A checkpoint's scheduler config says which spacing to use; when it names none (SD 1.5's and SD 2.x's
published configs do not) each sampler uses its own diffusers default, as `from_config` gives it: DDIM and
DDPM "leading", Euler, Euler ancestral and DPM-Solver++ "linspace".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sd.errors import UserError
from sd.samplers.base import check_prediction_type

if TYPE_CHECKING:  # annotations only: the CLI reads SD15_TIMESTEPS without importing torch
    from sd.schedule import NoiseSchedule

SPACINGS = ("leading", "linspace", "trailing")


def check_spacing(spacing: str) -> str:
    if spacing not in SPACINGS:
        raise UserError(f"timestep spacing {spacing!r} is not supported; use one of {', '.join(SPACINGS)}")
    return spacing


@dataclass(frozen=True)
class TimestepConfig:
    """The scheduler-config keys that pick the visited timesteps; the defaults are diffusers' for a missing key.

    spacing: "leading", "linspace" or "trailing"; None when the config names none, so that each sampler uses
    its diffusers default. steps_offset: added to "leading" timesteps. set_alpha_to_one: DDIM's abar after the
    last step (1, or abar_0 when False: the image keeps t=0's faint noise).
    """

    spacing: str | None = None
    steps_offset: int = 0
    set_alpha_to_one: bool = True

    def __post_init__(self) -> None:
        if self.spacing is not None:
            check_spacing(self.spacing)

    def spacing_or(self, default: str) -> str:
        """The spacing a sampler whose diffusers default is `default` runs with."""
        return self.spacing or default

    @classmethod
    def from_diffusers(cls, scheduler_config: dict) -> TimestepConfig:
        """From a diffusers scheduler_config.json: a missing key takes diffusers' default, as `from_config` does."""
        default = cls()
        return cls(
            spacing=scheduler_config.get("timestep_spacing"),
            steps_offset=int(scheduler_config.get("steps_offset", default.steps_offset)),
            set_alpha_to_one=bool(scheduler_config.get("set_alpha_to_one", default.set_alpha_to_one)),
        )

    def to_diffusers(self) -> dict:
        """The keys for a scheduler_config.json; no timestep_spacing key when none is named."""
        spacing = {} if self.spacing is None else {"timestep_spacing": self.spacing}
        return {"steps_offset": self.steps_offset, "set_alpha_to_one": self.set_alpha_to_one, **spacing}


# SD 1.5's (and SD 2.x's) published scheduler config: offset 1, abar_0 at the end, and no spacing named.
SD15_TIMESTEPS = TimestepConfig(spacing=None, steps_offset=1, set_alpha_to_one=False)
# What every sampler here ran with before the spacing could change: the shipped models' files, which record
# no spacing, were trained, measured and pictured with it, so they keep it.
LEADING_SD15 = TimestepConfig(spacing="leading", steps_offset=1, set_alpha_to_one=False)


def spaced_timesteps(
    spacing: str, num_inference_steps: int, num_train_timesteps: int = 1000, steps_offset: int = 0
) -> np.ndarray:
    """(N,) float64 timesteps in decreasing order, as diffusers computes them before its cast: integers,
    except linspace's (DDIM and DDPM round them, Euler keeps them as float32)."""
    if not 1 <= num_inference_steps <= num_train_timesteps:
        raise UserError(f"steps must be between 1 and {num_train_timesteps}, got {num_inference_steps}")
    n, total = num_inference_steps, num_train_timesteps
    if check_spacing(spacing) == "linspace":
        return np.linspace(0, total - 1, n)[::-1].copy()
    if spacing == "leading":
        return (np.arange(0, n) * (total // n)).round()[::-1] + steps_offset
    timesteps = trailing(n, total)
    if len(timesteps) != n:  # np.arange's float step overshoots by one element (61, 103, 121, ... steps)
        nearest = next(k for k in range(n - 1, 0, -1) if len(trailing(k, total)) == k)
        raise UserError(f"trailing spacing at {n} steps visits t = -1 in diffusers (a float rounding slip); "
                        f"choose another step count, e.g. {nearest}")  # fmt: skip
    return timesteps


def trailing(num_inference_steps: int, num_train_timesteps: int) -> np.ndarray:
    """round(T - i T / N) - 1 for i = 0, 1, ... while T - i T / N > 0, as diffusers computes it."""
    return np.round(np.arange(num_train_timesteps, 0, -num_train_timesteps / num_inference_steps)) - 1


class SpacedSampler:
    """What a sampler whose timesteps follow a spacing rule holds (DDPM, DDIM, Euler, Euler ancestral,
    DPM-Solver++): the noise schedule, what the UNet predicts, the checkpoint's timestep facts and the spacing
    they come to for this sampler."""

    order = 1
    default_spacing: str  # the diffusers scheduler's, for a config that names none

    def __init__(self, schedule: NoiseSchedule, prediction_type: str, timestep_config: TimestepConfig) -> None:
        self.schedule = schedule
        self.prediction_type = check_prediction_type(prediction_type)
        self.timestep_config = timestep_config
        self.spacing = timestep_config.spacing_or(self.default_spacing)

    def spaced_timesteps(self, num_inference_steps: int) -> np.ndarray:
        """(N,) float64 timesteps, decreasing, under this sampler's spacing and the checkpoint's steps_offset."""
        total, offset = self.schedule.num_train_timesteps, self.timestep_config.steps_offset
        return spaced_timesteps(self.spacing, num_inference_steps, total, offset)
