"""Euler: the probability-flow ODE in sigma form, one Euler step per timestep (Karras et al. 2022).

In x = x0 + sigma eps form (see sigmas.py) the ODE is dx/dsigma = (x - D(x; sigma)) / sigma, with the
denoiser D(x; sigma) = x - sigma eps_theta the predicted x0. The Euler step of Algorithm 1 (their Heun
sampler without its second-order correction; Algorithm 2's churn S_churn is 0) is

    d         = (x_i - x0_hat) / sigma_i                      (= eps_theta)
    x_{i+1}   = x_i + (sigma_{i+1} - sigma_i) d               sigma_N = 0, so the last step lands on x0_hat

i.e. x_{i+1} = x0_hat + sigma_{i+1} eps_theta: DDIM with eta = 0, written in sigma form. The UNet was
trained on variance-preserving inputs x_t = x / sqrt(sigma^2 + 1), so that is what it is fed, and the
start is DDIM's x_T ~ N(0, I) in sigma form: noise * sqrt(sigma_max^2 + 1), sigma_max the first table entry
(diffusers starts from noise * sigma_max under linspace and trailing spacing; see init_noise_sigma).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from sd.samplers.noise import Generators
from sd.samplers.sigmas import SigmaTableSampler

if TYPE_CHECKING:
    from sd.samplers.base import Timestep


class EulerSampler(SigmaTableSampler):
    def set_timesteps(self, num_inference_steps: int, device: torch.device | str = "cpu") -> None:
        timesteps = self.spaced_timesteps(num_inference_steps).astype(np.float32)  # (N,): linspace's fractional t kept
        self.set_custom_timesteps(timesteps, device)

    @property
    def init_noise_sigma(self) -> float:
        """sqrt(sigma_max^2 + 1) under leading spacing; diffusers uses sigma_max itself under linspace and
        trailing (0.2% less at sigma_max = 14.6), and so do we."""
        if self.spacing in ("linspace", "trailing"):
            return float(self.sigmas.max())
        return float((self.sigmas.max() ** 2 + 1) ** 0.5)  # float32 arithmetic, as diffusers

    def scale_model_input(self, sample: torch.Tensor, timestep: Timestep) -> torch.Tensor:
        sigma = self.sigmas[self.step_index(timestep)]
        return sample / ((sigma**2 + 1) ** 0.5)  # x0 + sigma eps -> unit-variance UNet input

    def predict_x0(self, model_output: torch.Tensor, sample: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """D(x; sigma), the denoised estimate."""
        if self.prediction_type == "epsilon":
            return sample - sigma * model_output
        return model_output * (-sigma / (sigma**2 + 1) ** 0.5) + (sample / (sigma**2 + 1))  # v_prediction

    def step(
        self, model_output: torch.Tensor, timestep: Timestep, sample: torch.Tensor, generator: Generators = None
    ) -> torch.Tensor:
        i = self.step_index(timestep)
        sample = sample.to(torch.float32)  # integrate in float32 even for a half-precision UNet
        sigma = self.sigmas[i]
        pred_original_sample = self.predict_x0(model_output, sample, sigma)
        derivative = (sample - pred_original_sample) / sigma  # d, computed from x0_hat exactly as diffusers
        dt = self.sigmas[i + 1] - sigma
        prev_sample = sample + derivative * dt
        self._step_index = i + 1
        return prev_sample.to(model_output.dtype)

    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """x = x0 + sigma eps at the img2img start (sigma form: no sqrt(abar) on x0)."""
        sigmas = self.sigmas.to(device=original.device, dtype=original.dtype)
        sigma = sigmas[self.noise_indices(timesteps)].reshape((-1,) + (1,) * (original.ndim - 1))  # (B, 1, 1, 1)
        return original + noise * sigma
