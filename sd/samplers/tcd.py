"""TCD: trajectory consistency distillation's sampler (Zheng et al. 2024), LCM's timesteps with a gamma knob.

Where LCM jumps to x0 and re-noises all the way to the next timestep t', TCD's "strategic stochastic sampling"
stops part-way: from t it predicts the trajectory's point at s = floor((1 - gamma) t') (gamma is diffusers' and
our `eta`), then adds just enough fresh noise to reach t':

    x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)
    x_s    = sqrt(abar_s) x0_hat + sqrt(1 - abar_s) eps                              (DDIM from t down to s)
    x_t'   = sqrt(abar_t' / abar_s) x_s + sqrt(1 - abar_t' / abar_s) z,   z ~ N(0, I)   (forward from s up to t')

gamma = 0 is deterministic (s = t', plain DDIM between the distillation grid's timesteps); gamma = 1 is LCM-like
(s = 0, all the noise fresh). The last step returns x_s with t' = 0 and draws nothing. The timesteps are LCM's
(lcm.py). diffusers' StableDiffusionPipeline passes its `eta` (default 0) as gamma; TCD's authors use 0.3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sd.errors import UserError
from sd.samplers.lcm import LCMSampler
from sd.samplers.noise import Generators, randn_tensor
from sd.schedule import SD15_SCHEDULE, NoiseSchedule

if TYPE_CHECKING:
    from sd.samplers.base import Timestep


class TCDSampler(LCMSampler):
    def __init__(
        self,
        schedule: NoiseSchedule = SD15_SCHEDULE,
        prediction_type: str = "epsilon",
        original_inference_steps: int = 50,
        eta: float = 0.3,
    ) -> None:
        if not 0.0 <= eta <= 1.0:
            raise UserError(f"TCD's eta (gamma) must be in [0, 1] (0 deterministic, 0.3 its authors'), got {eta}")
        super().__init__(schedule, prediction_type, original_inference_steps)
        self.eta = float(eta)

    def step(
        self, model_output: torch.Tensor, timestep: Timestep, sample: torch.Tensor, generator: Generators = None
    ) -> torch.Tensor:
        i = self._current_index(timestep)
        t = torch.as_tensor(int(timestep), dtype=torch.int64)
        prev_t = self.timesteps[i + 1] if i + 1 < len(self.timesteps) else torch.tensor(0)
        s = torch.floor((1 - self.eta) * prev_t).to(dtype=torch.long)  # float32 arithmetic, as diffusers
        # 0-d float32 tensors throughout: the same float32 arithmetic as diffusers, bit for bit.
        alpha_prod_t, alpha_prod_prev = self.alphas_cumprod[t], self.alphas_cumprod[prev_t]
        alpha_prod_s = self.alphas_cumprod[s]
        beta_prod_t, beta_prod_s = 1 - alpha_prod_t, 1 - alpha_prod_s
        if self.prediction_type == "epsilon":
            pred_original_sample = (sample - beta_prod_t.sqrt() * model_output) / alpha_prod_t.sqrt()
            pred_epsilon = model_output
        else:  # v_prediction
            pred_original_sample = (alpha_prod_t**0.5) * sample - (beta_prod_t**0.5) * model_output
            pred_epsilon = (alpha_prod_t**0.5) * model_output + (beta_prod_t**0.5) * sample
        pred_noised_sample = alpha_prod_s.sqrt() * pred_original_sample + beta_prod_s.sqrt() * pred_epsilon  # x_s
        self._step_index = i + 1
        if self.eta == 0 or i == self.num_inference_steps - 1:
            return pred_noised_sample  # deterministic, or the last step: no noise drawn
        noise = randn_tensor(model_output.shape, generator, pred_noised_sample.dtype, model_output.device)  # z
        ratio = alpha_prod_prev / alpha_prod_s  # abar_t' / abar_s
        return ratio.sqrt() * pred_noised_sample + (1 - ratio).sqrt() * noise  # x_s -> x_t'
