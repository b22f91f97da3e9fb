"""Exponential moving average of weights, with the warm-up that keeps early EMA from lagging.

    ema <- d * ema + (1 - d) * w,   d = min(decay, (1 + step) / (10 + step))

Early on d is small, so the average follows the fast-changing weights; later it smooths over ~1/(1-decay)
steps. (A constant 0.995 from step 0 was measured worse than the raw weights on this data.)
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for ema, live in zip(self.model.parameters(), model.parameters(), strict=True):
            ema.lerp_(live.detach(), 1.0 - d)
