"""Which of the 1000 training timesteps a sampler visits: SD 1.5's "leading" spacing.

With N steps and ratio = 1000 // N the sampler visits t = (N-1)*ratio + 1, ..., ratio + 1, 1 (steps_offset=1
shifts the grid off t=0, as SD 1.5's published scheduler config does). "Leading" never visits t=999 (50 steps
start at t=981); that is a quirk of SD 1.5's config, kept because the images depend on it.
"""

from __future__ import annotations

import numpy as np

from sd.errors import UserError


def leading_timesteps(num_inference_steps: int, num_train_timesteps: int = 1000, steps_offset: int = 1) -> np.ndarray:
    """(N,) int64 timesteps in decreasing order, as diffusers' `timestep_spacing="leading"`."""
    if not 1 <= num_inference_steps <= num_train_timesteps:
        raise UserError(f"steps must be between 1 and {num_train_timesteps}, got {num_inference_steps}")
    step_ratio = num_train_timesteps // num_inference_steps
    timesteps = (np.arange(0, num_inference_steps) * step_ratio).round()[::-1].copy().astype(np.int64)
    return timesteps + steps_offset
