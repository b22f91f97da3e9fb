"""Parameters and FLOPs of one UNet call, counted on the meta device: shapes only, nothing allocated.

On the meta device attention is counted through its matmuls; on CPU tensors torch's fused attention kernel
goes uncounted, so every benchmark counts here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def meta_cost(build: Callable[[], nn.Module], batch: int, size: int) -> tuple[int, int]:
    """(parameters, FLOPs of one call at batch x size x size latents) of the UNet `build()` makes."""
    with torch.device("meta"):
        model = build()
        config = model.config
        x = torch.empty(batch, config.in_channels, size, size)  # (B, 4, h, w)
        context = torch.empty(batch, 77, config.context_dim)  # (B, 77, C)
        with FlopCounterMode(display=False) as counter:
            model(x, 500, context)  # one shared timestep, as samplers call it (a meta tensor cannot be compared)
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops()
