"""The bookkeeping of the abar-form samplers (DDPM, DDIM): integer timesteps, and abar_t looked up at them.

They work on x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps directly, with abar_t = alphas_cumprod[t] read from
the schedule's (1000,) table at the visited timestep itself. The timesteps follow the checkpoint's spacing
(spacing.py), linspace's fractional t rounded to integers as diffusers does. Each step derives its place
from the timestep's value, so img2img needs no begin index.
"""

from __future__ import annotations

import numpy as np
import torch

from sd.samplers.base import VariancePreserving
from sd.samplers.spacing import SpacedSampler, TimestepConfig
from sd.schedule import NoiseSchedule, add_noise


class AlphaTableSampler(VariancePreserving, SpacedSampler):
    default_spacing = "leading"  # diffusers' DDPMScheduler's and DDIMScheduler's

    def __init__(self, schedule: NoiseSchedule, prediction_type: str, timestep_config: TimestepConfig) -> None:
        super().__init__(schedule, prediction_type, timestep_config)
        self.alphas_cumprod = schedule.alphas_cumprod  # (1000,) float32
        self.num_inference_steps: int | None = None
        self.timesteps = torch.arange(schedule.num_train_timesteps - 1, -1, -1)  # (1000,) int64 until set_timesteps

    def set_timesteps(self, num_inference_steps: int, device: torch.device | str = "cpu") -> None:
        timesteps = self.spaced_timesteps(num_inference_steps).round().astype(np.int64)  # (N,): linspace's t rounded
        self.num_inference_steps = num_inference_steps
        self.timesteps = torch.from_numpy(timesteps).to(device)  # (N,) int64

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Nothing to do: the step finds its place from the timestep value, so img2img needs no begin index."""

    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return add_noise(self.alphas_cumprod, original, noise, timesteps)
