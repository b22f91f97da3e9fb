"""DDIM: a non-Markovian reverse process with the same marginals as DDPM (Song et al. 2021).

With abar_t the cumulative product of alphas and t' = t - 1000 // N the previous timestep (whatever the spacing:
diffusers' rule, so under linspace or trailing t' is not always the next visited timestep), eq. 12:

    x0_hat = (x_t - sqrt(1 - abar_t) eps_theta) / sqrt(abar_t)
    x_t'   = sqrt(abar_t') x0_hat  +  sqrt(1 - abar_t' - s_t^2) eps_theta  +  s_t z
    s_t    = eta * sqrt((1 - abar_t') / (1 - abar_t)) * sqrt(1 - abar_t / abar_t')        (eq. 16)

eta = 0 is deterministic (an ODE solver in disguise: same noise in, same image out, few steps needed);
eta = 1 makes s_t DDPM's posterior standard deviation. After the last visited step (t' < 0) SD 1.5 uses
abar_0 rather than 1 ("set_alpha_to_one=False"), so the result keeps the faint noise of t=0; diffusers'
default (a config without the key) is 1.
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


class DDIMSampler(AlphaTableSampler):
    def __init__(
        self,
        schedule: NoiseSchedule = SD15_SCHEDULE,
        prediction_type: str = "epsilon",
        eta: float = 0.0,
        timestep_config: TimestepConfig = SD15_TIMESTEPS,
    ) -> None:
        if not eta >= 0.0:
            raise UserError(f"eta must be >= 0 (0 = deterministic DDIM, 1 = DDPM-like noise), got {eta}")
        super().__init__(schedule, prediction_type, timestep_config)
        self.eta = float(eta)
        # abar after the last step: 1 (a clean end) or, as SD 1.5's config says, abar_0
        self.final_alpha_cumprod = torch.tensor(1.0) if timestep_config.set_alpha_to_one else self.alphas_cumprod[0]

    def step(
        self, model_output: torch.Tensor, timestep: Timestep, sample: torch.Tensor, generator: Generators = None
    ) -> torch.Tensor:
        if self.num_inference_steps is None:
            raise RuntimeError("call set_timesteps before step")
        t = int(timestep)
        prev_t = t - self.schedule.num_train_timesteps // self.num_inference_steps
        # 0-d float32 tensors throughout: the same float32 arithmetic as diffusers, bit for bit.
        alpha_prod_t = self.alphas_cumprod[t]
        alpha_prod_t_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else self.final_alpha_cumprod
        beta_prod_t = 1 - alpha_prod_t

        if self.prediction_type == "epsilon":
            pred_original_sample = (sample - beta_prod_t ** (0.5) * model_output) / alpha_prod_t ** (0.5)
            pred_epsilon = model_output
        else:  # v_prediction
            pred_original_sample = (alpha_prod_t**0.5) * sample - (beta_prod_t**0.5) * model_output
            pred_epsilon = (alpha_prod_t**0.5) * model_output + (beta_prod_t**0.5) * sample

        beta_prod_t_prev = 1 - alpha_prod_t_prev
        variance = (beta_prod_t_prev / beta_prod_t) * (1 - alpha_prod_t / alpha_prod_t_prev)
        std_dev_t = self.eta * variance ** (0.5)  # s_t

        pred_sample_direction = (1 - alpha_prod_t_prev - std_dev_t**2) ** (0.5) * pred_epsilon
        prev_sample = alpha_prod_t_prev ** (0.5) * pred_original_sample + pred_sample_direction
        if self.eta > 0:
            noise = randn_tensor(model_output.shape, generator, model_output.dtype, model_output.device)
            prev_sample = prev_sample + std_dev_t * noise
        return prev_sample
