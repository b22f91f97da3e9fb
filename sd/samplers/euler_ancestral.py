"""Euler ancestral: an Euler step down to sigma_down, then fresh noise back up to sigma_{i+1}.

Going from sigma_i to sigma_{i+1} = sigma_to, split the target variance into a deterministic and a random part,

    sigma_up   = sqrt(sigma_to^2 (sigma_i^2 - sigma_to^2) / sigma_i^2)
    sigma_down = sqrt(sigma_to^2 - sigma_up^2)                    (sigma_down^2 + sigma_up^2 = sigma_to^2)
    x_{i+1}    = x_i + (sigma_down - sigma_i) (x_i - x0_hat) / sigma_i  +  sigma_up z

i.e. x_{i+1} = x0_hat + sigma_down eps_theta + sigma_up z: DDIM with eta = 1 (sigma_up is eq. 16's s_t divided
by sqrt(abar_t')), written in Karras et al.'s sigma form. Each step replaces part of the noise with fresh
noise, so results keep changing with the step count instead of converging like Euler's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sd.samplers.euler import EulerSampler
from sd.samplers.noise import Generators, randn_tensor

if TYPE_CHECKING:
    from sd.samplers.base import Timestep


class EulerAncestralSampler(EulerSampler):
    def step(
        self, model_output: torch.Tensor, timestep: Timestep, sample: torch.Tensor, generator: Generators = None
    ) -> torch.Tensor:
        i = self.step_index(timestep)
        sigma = self.sigmas[i]
        sample = sample.to(torch.float32)
        pred_original_sample = self.predict_x0(model_output, sample, sigma)

        sigma_from, sigma_to = self.sigmas[i], self.sigmas[i + 1]
        sigma_up = (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5
        sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5

        derivative = (sample - pred_original_sample) / sigma
        prev_sample = sample + derivative * (sigma_down - sigma)
        # Drawn even on the last step (sigma_up = 0 there) so the generators advance exactly as diffusers'.
        noise = randn_tensor(model_output.shape, generator, model_output.dtype, model_output.device)
        prev_sample = prev_sample + noise * sigma_up
        self._step_index = i + 1
        return prev_sample.to(model_output.dtype)
