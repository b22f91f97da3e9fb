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

from typing import TYPE_CHECKING

import torch

from sd.errors import UserError
from sd.samplers.alphas import AlphaTableSampler
from sd.samplers.noise import Generators, randn_tensor
from sd.samplers.spacing import SD15_TIMESTEPS, TimestepConfig
from sd.schedule import SD15_SCHEDULE, NoiseSchedule

if TYPE_CHECKING:
    from sd.samplers.base import Timestep


class DDPMSampler(AlphaTableSampler):
    def __init__(
        self,
        schedule: NoiseSchedule = SD15_SCHEDULE,
        prediction_type: str = "epsilon",
        variance_type: str = "fixed_small",
        timestep_config: TimestepConfig = SD15_TIMESTEPS,
    ) -> None:
        if variance_type not in ("fixed_small", "fixed_large"):
            raise UserError(f"variance_type {variance_type!r} is not supported; use fixed_small or fixed_large")
        super().__init__(schedule, prediction_type, timestep_config)
        self.variance_type = variance_type
        self.one = torch.tensor(1.0)

    def previous_timestep(self, timestep: int) -> int:
        """t': the next timestep in the visited list, or -1 after the last one."""
        visited = self.timesteps.tolist()
        index = visited.index(timestep)
        return visited[index + 1] if index + 1 < len(visited) else -1

    def step(
        self, model_output: torch.Tensor, timestep: Timestep, sample: torch.Tensor, generator: Generators = None
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
