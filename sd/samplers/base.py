"""What a sampler is: the interface the pipeline loop calls, and the model outputs the samplers understand.

A sampler turns the UNet's prediction at x_t into x_{t-1}. The loop is always

    sampler.set_timesteps(steps)
    x = randn(shape) * sampler.init_noise_sigma            # or sampler.add_noise(x0, noise, t) for img2img
    for t in sampler.timesteps:
        eps = unet(sampler.scale_model_input(x, t), t)    # the UNet sees the VP-scaled x_t
        x = sampler.step(eps, t, x, generator)

Every method matches the diffusers scheduler of the same name, value for value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from sd.errors import UserError

if TYPE_CHECKING:  # annotations only: the CLI reads PREDICTION_TYPES without importing torch
    from typing import TypeAlias

    import torch

    from sd.samplers.noise import Generators

    Timestep: TypeAlias = int | float | torch.Tensor
    """A timestep as the loop passes it: an element of `timesteps` (a 0-d tensor) or a plain number."""

PREDICTION_TYPES = ("epsilon", "v_prediction")
"""epsilon: the UNet predicts the added noise (SD 1.x). v_prediction: v = alpha_t eps - sigma_t x0 (SD 2.x 768)."""


def check_prediction_type(prediction_type: str, where: str = "") -> str:
    """Reject a prediction type before sampling, not halfway through the first step; `where`: the file it came from."""
    if prediction_type not in PREDICTION_TYPES:
        prefix = f"{where}: " if where else ""
        raise UserError(
            f"{prefix}prediction_type {prediction_type!r} is not supported; use one of {', '.join(PREDICTION_TYPES)}"
        )
    return prediction_type


class Sampler(Protocol):
    order: int
    init_noise_sigma: float
    timesteps: torch.Tensor

    def set_timesteps(self, num_inference_steps: int, device: torch.device | str = "cpu") -> None: ...

    def set_begin_index(self, begin_index: int = 0) -> None: ...

    def scale_model_input(self, sample: torch.Tensor, timestep: Timestep) -> torch.Tensor: ...

    def step(
        self, model_output: torch.Tensor, timestep: Timestep, sample: torch.Tensor, generator: Generators = None
    ) -> torch.Tensor: ...

    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor: ...


class VariancePreserving:
    """A sampler whose state is x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, the scale the UNet was trained on
    (DDPM, DDIM, DPM-Solver++, LCM, TCD; not Euler's sigma form): it starts from x_T ~ N(0, I) and feeds x_t
    to the UNet as it is."""

    init_noise_sigma = 1.0

    def scale_model_input(self, sample: torch.Tensor, timestep: Timestep) -> torch.Tensor:
        return sample  # x_t is already in the UNet's (variance-preserving) scale
