"""LCM: sampling a latent consistency model in 1-8 steps (Luo et al. 2023; consistency models, Song et al. 2023).

A consistency model f(x_t, t) maps any point of a probability-flow trajectory straight to its start x0. It is
parameterised so that f(x, 0) = x holds by construction (the boundary condition):

    f(x_t, t) = c_skip(t) x_t + c_out(t) x0_hat(x_t, t)
    c_skip(t) = sigma_data^2 / ((s t)^2 + sigma_data^2),   c_out(t) = s t / sqrt((s t)^2 + sigma_data^2)

with sigma_data = 0.5 and the timestep scaled by s = 10 (`timestep_scaling`), so c_skip is already ~0 at t=20
and f is essentially x0_hat away from t=0. x0_hat is the usual estimate from the UNet's eps or v.

Multistep sampling alternates denoising and re-noising (Algorithm 1 of the consistency-models paper):

    x0 = f(x_t, t);   x_t' = sqrt(abar_t') x0 + sqrt(1 - abar_t') z,   z ~ N(0, I) fresh from the generator

and the last step returns x0 itself, drawing nothing (so 1 step draws no noise after the start).

Timesteps come from the grid the model was distilled on, not from a spacing rule: with
`original_inference_steps` = 50 and k = 1000 // 50 = 20 the grid is t = 20 i - 1 for i = 50 .. 1
(999, 979, ..., 19), and N steps take the grid entries at indices floor(linspace(0, 50, N, endpoint=False)):
1 -> [999], 2 -> [999, 499], 4 -> [999, 759, 499, 259]. Value for value as diffusers' LCMScheduler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from sd.errors import UserError
from sd.samplers.base import VariancePreserving, check_prediction_type
from sd.samplers.noise import Generators, randn_tensor
from sd.schedule import SD15_SCHEDULE, NoiseSchedule, add_noise

if TYPE_CHECKING:
    from sd.samplers.base import Timestep

SIGMA_DATA = 0.5


def consistency_scalings(timestep: torch.Tensor, timestep_scaling: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(c_skip, c_out) of the boundary condition at integer `timestep`(s), in float32 as diffusers computes them.

    The distillation trainer uses the same function, so a student is trained for exactly what it is sampled with.
    """
    scaled = torch.as_tensor(timestep, dtype=torch.int64) * timestep_scaling  # s t, float32
    c_skip = SIGMA_DATA**2 / (scaled**2 + SIGMA_DATA**2)
    c_out = scaled / (scaled**2 + SIGMA_DATA**2) ** 0.5
    return c_skip, c_out


def lcm_timesteps(
    num_inference_steps: int, original_inference_steps: int = 50, num_train_timesteps: int = 1000, strength: float = 1.0
) -> np.ndarray:
    """(N,) int64 timesteps, decreasing: N evenly spaced picks from the distillation grid (see the module docstring).

    `strength` < 1 keeps only the grid's lower part (t < strength * 1000), as LCM's own img2img pipeline does.
    """
    if not 1 <= original_inference_steps <= num_train_timesteps:
        raise UserError(f"original_inference_steps must be between 1 and {num_train_timesteps}, "
                        f"got {original_inference_steps}")  # fmt: skip
    k = num_train_timesteps // original_inference_steps
    grid = np.arange(1, int(original_inference_steps * strength) + 1) * k - 1  # (M,) 19, 39, ..., 999
    if not 1 <= num_inference_steps <= len(grid):
        raise UserError(
            f"LCM samples at most {len(grid)} steps here (original_inference_steps {original_inference_steps}"
            f" x strength {strength:g}); got {num_inference_steps}"
        )
    grid = grid[::-1].copy()  # decreasing: 999, 979, ...
    picks = np.floor(np.linspace(0, len(grid), num=num_inference_steps, endpoint=False)).astype(np.int64)
    return grid[picks]


class LCMSampler(VariancePreserving):
    order = 1
    default_spacing = None  # no spacing rule: the timesteps are picks from the distillation grid

    def __init__(
        self,
        schedule: NoiseSchedule = SD15_SCHEDULE,
        prediction_type: str = "epsilon",
        original_inference_steps: int = 50,
        timestep_scaling: float = 10.0,
    ) -> None:
        self.schedule = schedule
        self.prediction_type = check_prediction_type(prediction_type)
        self.original_inference_steps = original_inference_steps
        self.timestep_scaling = timestep_scaling
        self.alphas_cumprod = schedule.alphas_cumprod  # (1000,) float32
        self.timesteps = torch.empty(0, dtype=torch.int64)
        self.num_inference_steps: int | None = None
        self._step_index: int | None = None
        self._begin_index: int | None = None

    def set_timesteps(
        self, num_inference_steps: int, device: torch.device | str = "cpu", strength: float = 1.0
    ) -> None:
        timesteps = lcm_timesteps(
            num_inference_steps, self.original_inference_steps, self.schedule.num_train_timesteps, strength
        )
        self.num_inference_steps = num_inference_steps
        self.timesteps = torch.from_numpy(timesteps).to(device)  # (N,) int64
        self._step_index = None
        self._begin_index = None

    def set_begin_index(self, begin_index: int = 0) -> None:
        """img2img runs the tail of the timesteps; the injected noise stops at the schedule's last step."""
        self._begin_index = begin_index

    def _current_index(self, timestep: Timestep) -> int:
        if self.num_inference_steps is None:
            raise RuntimeError("call set_timesteps before step")
        if self._step_index is None:
            if self._begin_index is not None:
                self._step_index = self._begin_index
            else:
                matches = (self.timesteps == int(timestep)).nonzero().flatten().tolist()
                if not matches:
                    raise ValueError(f"timestep {int(timestep)} is not one of this sampler's timesteps")
                self._step_index = matches[1] if len(matches) > 1 else matches[0]
        return self._step_index

    def predict_x0(self, model_output: torch.Tensor, sample: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x0_hat from eps: (x_t - sqrt(1 - abar) eps) / sqrt(abar); from v: sqrt(abar) x_t - sqrt(1 - abar) v."""
        alpha_prod_t = self.alphas_cumprod[t]
        beta_prod_t = 1 - alpha_prod_t
        if self.prediction_type == "epsilon":
            return (sample - beta_prod_t.sqrt() * model_output) / alpha_prod_t.sqrt()
        return alpha_prod_t.sqrt() * sample - beta_prod_t.sqrt() * model_output

    def step(
        self, model_output: torch.Tensor, timestep: Timestep, sample: torch.Tensor, generator: Generators = None
    ) -> torch.Tensor:
        i = self._current_index(timestep)
        t = torch.as_tensor(int(timestep), dtype=torch.int64)
        prev_t = self.timesteps[i + 1] if i + 1 < len(self.timesteps) else t
        c_skip, c_out = consistency_scalings(t, self.timestep_scaling)
        denoised = c_out * self.predict_x0(model_output, sample, t) + c_skip * sample  # f(x_t, t), (B, 4, h, w)
        self._step_index = i + 1
        if i == self.num_inference_steps - 1:
            return denoised  # the last step lands on x0 and draws no noise
        alpha_prod_prev = self.alphas_cumprod[prev_t]
        noise = randn_tensor(model_output.shape, generator, denoised.dtype, model_output.device)  # z, (B, 4, h, w)
        return alpha_prod_prev.sqrt() * denoised + (1 - alpha_prod_prev).sqrt() * noise  # re-noised to t'

    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return add_noise(self.alphas_cumprod, original, noise, timesteps)
