"""DDPM: ancestral sampling of the learned reverse chain (Ho et al. 2020).

With abar_t the cumulative product of alphas and t' the previous visited timestep (t' = -1 means abar = 1),
x0_hat = (x_t - sqrt(1 - abar_t) eps_theta) / sqrt(abar_t), and the step samples the Gaussian posterior
q(x_t' | x_t, x0_hat) (eq. 6-7, with beta_t generalised to a skip from t to t'):

    beta_t  = 1 - abar_t / abar_t'
    mu      = sqrt(abar_t') beta_t / (1 - abar_t) * x0_hat  +  sqrt(1 - beta_t) (1 - abar_t') / (1 - abar_t) * x_t
    x_t'    = mu + sigma_t z,   sigma_t^2 = (1 - abar_t') / (1 - abar_t) * beta_t   ("fixed_small", beta~_t)

Substituting x0_hat gives eq. 11's mean. Fresh noise z is added at every step with t > 0, so DDPM needs many
steps; it is here as the reference point the other samplers improve on.
"""

from __future__ import annotations

import numpy as np
import torch

from sd.errors import UserError
from sd.samplers.base import check_prediction_type
from sd.samplers.noise import Generators, randn_tensor
from sd.samplers.spacing import SD15_TIMESTEPS, TimestepConfig, spaced_timesteps
from sd.schedule import SD15_SCHEDULE, NoiseSchedule, add_noise


class DDPMSampler:
    order = 1
    init_noise_sigma = 1.0
    default_spacing = "leading"  # diffusers' DDPMScheduler's, for a config that names none

    def __init__(
        self,
        schedule: NoiseSchedule = SD15_SCHEDULE,
        prediction_type: str = "epsilon",
        variance_type: str = "fixed_small",
        timestep_config: TimestepConfig = SD15_TIMESTEPS,
    ) -> None:
        if variance_type not in ("fixed_small", "fixed_large"):
            raise UserError(f"variance_type {variance_type!r} is not supported; use fixed_small or fixed_large")
        self.schedule = schedule
        self.prediction_type = check_prediction_type(prediction_type)
        self.variance_type = variance_type
        self.timestep_config = timestep_config
        self.spacing = timestep_config.spacing_or(self.default_spacing)
        self.alphas_cumprod = schedule.alphas_cumprod  # (1000,) float32
        self.one = torch.tensor(1.0)
        self._visited = list(range(schedule.num_train_timesteps - 1, -1, -1))  # all 1000 until set_timesteps
        self.timesteps = torch.tensor(self._visited)  # (1000,) int64

    def set_timesteps(self, num_inference_steps: int, device: torch.device | str = "cpu") -> None:
        timesteps = spaced_timesteps(
            self.spacing, num_inference_steps, self.schedule.num_train_timesteps, self.timestep_config.steps_offset
        ).round().astype(np.int64)  # (N,): linspace's fractional t rounded, as diffusers
        self._visited = timesteps.tolist()
        self.timesteps = torch.from_numpy(timesteps).to(device)  # (N,) int64

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Nothing to do: DDPM finds its place from the timestep value, so img2img needs no begin index."""

    def scale_model_input(self, sample: torch.Tensor, timestep: int | float | torch.Tensor) -> torch.Tensor:
        return sample  # x_t is already in the UNet's (variance-preserving) scale

    def previous_timestep(self, timestep: int) -> int:
        """t': the next timestep in the visited list, or -1 after the last one."""
        index = self._visited.index(timestep)
        return self._visited[index + 1] if index + 1 < len(self._visited) else -1

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | float | torch.Tensor,
        sample: torch.Tensor,
        generator: Generators = None,
    ) -> torch.Tensor:
        t = int(timestep)
        prev_t = self.previous_timestep(t)
        # 0-d float32 tensors throughout: the same float32 arithmetic as diffusers, bit for bit.
        alpha_prod_t = self.alphas_cumprod[t]
        alpha_prod_t_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else self.one
        beta_prod_t = 1 - alpha_prod_t
        beta_prod_t_prev = 1 - alpha_prod_t_prev
        current_alpha_t = alpha_prod_t / alpha_prod_t_prev
        current_beta_t = 1 - current_alpha_t

        if self.prediction_type == "epsilon":
            pred_original_sample = (sample - beta_prod_t ** (0.5) * model_output) / alpha_prod_t ** (0.5)
        else:  # v_prediction
            pred_original_sample = (alpha_prod_t**0.5) * sample - (beta_prod_t**0.5) * model_output

        pred_original_sample_coeff = (alpha_prod_t_prev ** (0.5) * current_beta_t) / beta_prod_t
        current_sample_coeff = current_alpha_t ** (0.5) * beta_prod_t_prev / beta_prod_t
        prev_sample = pred_original_sample_coeff * pred_original_sample + current_sample_coeff * sample  # mu

        if t > 0:
            noise = randn_tensor(model_output.shape, generator, model_output.dtype, model_output.device)
            prev_sample = prev_sample + (self._variance(t, prev_t) ** 0.5) * noise
        return prev_sample

    def _variance(self, t: int, prev_t: int) -> torch.Tensor:
        """sigma_t^2: beta~_t (fixed_small, the posterior's own variance) or beta_t (fixed_large)."""
        alpha_prod_t = self.alphas_cumprod[t]
        alpha_prod_t_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else self.one
        current_beta_t = 1 - alpha_prod_t / alpha_prod_t_prev
        if self.variance_type == "fixed_large":
            return current_beta_t
        variance = (1 - alpha_prod_t_prev) / (1 - alpha_prod_t) * current_beta_t
        return torch.clamp(variance, min=1e-20)  # 0 when t' = -1; the floor is diffusers'

    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return add_noise(self.alphas_cumprod, original, noise, timesteps)

