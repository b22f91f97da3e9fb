"""DPM-Solver++(2M): a second-order multistep solver of the diffusion ODE in log-SNR time (Lu et al. 2022).

The state is x_t = alpha_t x0 + sigma_t eps with alpha_t = 1 / sqrt(s^2 + 1) and sigma_t = s alpha_t, s the
table's sigma (sigmas.py); lambda_t = log(alpha_t / sigma_t) is half the log-SNR. The ODE for the data prediction
x0_hat = x_theta(x_t, t) is then solved exactly in its linear part and the integral of x_theta is
approximated from the last two predictions. From s0 to t, with h = lambda_t - lambda_s0, the previous step's
h_0 = lambda_s0 - lambda_s1 and r0 = h_0 / h:

    D0 = x0_hat(s0),   D1 = (x0_hat(s0) - x0_hat(s1)) / r0
    x_t = (sigma_t / sigma_s0) x_s0 - alpha_t (e^{-h} - 1) (D0 + D1 / 2)         (Algorithm 2, "midpoint")

The first step has no previous x0_hat and the last one (to sigma = 0, lambda = inf) is taken as the
first-order update x_t = (sigma_t / sigma_s0) x_s0 - alpha_t (e^{-h} - 1) D0 (DDIM's, in these variables).
Unlike Euler, the state x_t stays in the VP scale: init_noise_sigma is 1 and the UNet input is not rescaled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from sd.samplers.base import VariancePreserving
from sd.samplers.noise import Generators
from sd.samplers.sigmas import SigmaTableSampler

if TYPE_CHECKING:
    from sd.samplers.base import Timestep


def vp_alpha_sigma(sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Karras sigma -> (alpha_t, sigma_t) of x_t = alpha_t x0 + sigma_t eps."""
    alpha_t = 1 / ((sigma**2 + 1) ** 0.5)
    return alpha_t, sigma * alpha_t


class DPMSolverPlusPlus2MSampler(VariancePreserving, SigmaTableSampler):
    def set_timesteps(self, num_inference_steps: int, device: torch.device | str = "cpu") -> None:
        # diffusers' DPM-Solver spaces N + 1 leading or linspace timesteps and drops the last (t ~ 0), so the
        # final step goes from the smallest kept t to sigma = 0; trailing spaces N and keeps them all.
        if self.spacing == "trailing":
            timesteps = self.spaced_timesteps(num_inference_steps)
        else:
            timesteps = self.spaced_timesteps(num_inference_steps + 1)[:-1]
        timesteps = timesteps.round().astype(np.int64)  # (N,)
        self.set_custom_timesteps(timesteps, device)

    def _set_table(self, timesteps: torch.Tensor, sigmas: torch.Tensor) -> None:
        """A fresh table also starts with no previous x0_hat: the first step is first order."""
        super()._set_table(timesteps, sigmas)
        self.model_outputs: list[torch.Tensor | None] = [None, None]  # x0_hat at s1, s0
        self.lower_order_nums = 0

    def step(
        self, model_output: torch.Tensor, timestep: Timestep, sample: torch.Tensor, generator: Generators = None
    ) -> torch.Tensor:
        i = self.step_index(timestep)
        alpha_s0, sigma_s0 = vp_alpha_sigma(self.sigmas[i])
        if self.prediction_type == "epsilon":
            x0_pred = (sample - sigma_s0 * model_output) / alpha_s0
        else:  # v_prediction
            x0_pred = alpha_s0 * sample - sigma_s0 * model_output
        self.model_outputs = [self.model_outputs[-1], x0_pred]
        sample = sample.to(torch.float32)

        is_last = i == len(self.timesteps) - 1  # final sigma 0: lambda = inf, only first order is defined
        if self.lower_order_nums < 1 or is_last:
            prev_sample = self.first_order_update(x0_pred, sample, i)
        else:
            prev_sample = self.second_order_update(sample, i)
        self.lower_order_nums = min(self.lower_order_nums + 1, 2)
        self._step_index = i + 1
        return prev_sample.to(model_output.dtype)

    def first_order_update(self, x0_pred: torch.Tensor, sample: torch.Tensor, i: int) -> torch.Tensor:
        alpha_t, sigma_t = vp_alpha_sigma(self.sigmas[i + 1])
        alpha_s, sigma_s = vp_alpha_sigma(self.sigmas[i])
        lambda_t = torch.log(alpha_t) - torch.log(sigma_t)
        lambda_s = torch.log(alpha_s) - torch.log(sigma_s)
        h = lambda_t - lambda_s
        return (sigma_t / sigma_s) * sample - (alpha_t * (torch.exp(-h) - 1.0)) * x0_pred

    def second_order_update(self, sample: torch.Tensor, i: int) -> torch.Tensor:
        alpha_t, sigma_t = vp_alpha_sigma(self.sigmas[i + 1])
        alpha_s0, sigma_s0 = vp_alpha_sigma(self.sigmas[i])
        alpha_s1, sigma_s1 = vp_alpha_sigma(self.sigmas[i - 1])
        lambda_t = torch.log(alpha_t) - torch.log(sigma_t)
        lambda_s0 = torch.log(alpha_s0) - torch.log(sigma_s0)
        lambda_s1 = torch.log(alpha_s1) - torch.log(sigma_s1)
        m1, m0 = self.model_outputs  # x0_hat at s1, s0
        h, h_0 = lambda_t - lambda_s0, lambda_s0 - lambda_s1
        r0 = h_0 / h
        D0, D1 = m0, (1.0 / r0) * (m0 - m1)
        return (
            (sigma_t / sigma_s0) * sample
            - (alpha_t * (torch.exp(-h) - 1.0)) * D0
            - 0.5 * (alpha_t * (torch.exp(-h) - 1.0)) * D1
        )

    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """x_t = alpha_t x0 + sigma_t eps at the img2img start, from the table's sigma."""
        sigmas = self.sigmas.to(device=original.device, dtype=original.dtype)
        sigma = sigmas[self.noise_indices(timesteps)].reshape((-1,) + (1,) * (original.ndim - 1))  # (B, 1, 1, 1)
        alpha_t, sigma_t = vp_alpha_sigma(sigma)
        return alpha_t * original + sigma_t * noise
