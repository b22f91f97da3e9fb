"""The noise-level table of the sigma-form samplers (Euler, Euler ancestral, DPM-Solver++), and their place in it.

Dividing x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps by sqrt(abar_t) gives x0 + sigma_t eps with

    sigma_t = sqrt((1 - abar_t) / abar_t)        (Karras et al. 2022's variance-exploding form)

so sampling becomes integrating from a large sigma down to 0. The table holds sigma at each visited timestep,
linearly interpolated in t (np.interp over the 1000 training sigmas, not over log sigma), followed by a
final sigma of 0: (N + 1,) float32, kept on the CPU as diffusers does.

The step is found by position in that table, not by timestep value: img2img sets a begin index, otherwise
the first timestep seen is looked up once and every step then advances by one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from sd.samplers.spacing import SD15_TIMESTEPS, SpacedSampler, TimestepConfig
from sd.schedule import SD15_SCHEDULE, NoiseSchedule

if TYPE_CHECKING:
    from sd.samplers.base import Timestep


def sigma_table(schedule: NoiseSchedule, timesteps: np.ndarray) -> torch.Tensor:
    """(N,) visited timesteps -> (N + 1,) float32 sigmas, the last one 0."""
    alphas_cumprod = schedule.alphas_cumprod
    train_sigmas = np.array(((1 - alphas_cumprod) / alphas_cumprod) ** 0.5)  # (1000,) float32, ~0.029 .. ~14.6
    sigmas = np.interp(timesteps, np.arange(0, len(train_sigmas)), train_sigmas)  # (N,) float64
    return torch.from_numpy(np.concatenate([sigmas, [0.0]]).astype(np.float32))  # (N + 1,)


class SigmaTableSampler(SpacedSampler):
    """The bookkeeping shared by samplers that walk `self.sigmas` one entry per step."""

    default_spacing = "linspace"  # diffusers' Euler, Euler ancestral and DPM-Solver default, for a config naming none

    def __init__(
        self,
        schedule: NoiseSchedule = SD15_SCHEDULE,
        prediction_type: str = "epsilon",
        timestep_config: TimestepConfig = SD15_TIMESTEPS,
    ) -> None:
        super().__init__(schedule, prediction_type, timestep_config)
        self._set_table(torch.empty(0), torch.empty(0))  # no table until set_timesteps

    def _set_table(self, timesteps: torch.Tensor, sigmas: torch.Tensor) -> None:
        """Install a new schedule; a fresh one starts with no step taken and no begin index."""
        self.timesteps, self.sigmas = timesteps, sigmas
        self._step_index: int | None = None
        self._begin_index: int | None = None

    def set_custom_timesteps(self, timesteps: list[int] | np.ndarray, device: torch.device | str = "cpu") -> None:
        """Walk exactly these decreasing timesteps, then to sigma = 0 (diffusers' `set_timesteps(timesteps=...)`)."""
        steps = np.asarray(timesteps)  # (N,) integers, or Euler's fractional linspace t
        self._set_table(torch.from_numpy(steps).to(device), sigma_table(self.schedule, steps))  # (N,), (N+1,)

    def set_begin_index(self, begin_index: int = 0) -> None:
        """img2img starts part-way down the table; set this before the first step (and before add_noise)."""
        self._begin_index = begin_index

    def index_for_timestep(self, timestep: Timestep) -> int:
        """Position of `timestep` in self.timesteps; the second match if it repeats, as diffusers."""
        matches = [i for i, t in enumerate(self.timesteps.tolist()) if t == float(timestep)]
        if not matches:
            raise ValueError(f"timestep {float(timestep)} is not one of this sampler's timesteps")
        return matches[1] if len(matches) > 1 else matches[0]

    def step_index(self, timestep: Timestep) -> int:
        """The current position in the table, found on the first call of a run."""
        if self._step_index is None:
            self._step_index = self._begin_index if self._begin_index is not None else self.index_for_timestep(timestep)
        return self._step_index

    def noise_indices(self, timesteps: torch.Tensor) -> list[int]:
        """Table positions for add_noise: the begin index (or current step) if set, else looked up per timestep."""
        if self._begin_index is None:
            return [self.index_for_timestep(t) for t in timesteps]
        position = self._step_index if self._step_index is not None else self._begin_index
        return [position] * timesteps.shape[0]
