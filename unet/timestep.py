"""Sinusoidal timestep embedding (Vaswani et al. 2017's positional encoding, applied to t).

    freq_i = 10000^(-i / half),  emb(t) = [cos(t * freq_0 .. t * freq_{half-1}), sin(...)]

ldm puts cos first (diffusers calls this `flip_sin_to_cos=True`).
"""

from __future__ import annotations

import math

import torch


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half
    )  # (half,)
    args = timesteps[:, None].float() * freqs[None]  # (B,) -> (B, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, dim)
