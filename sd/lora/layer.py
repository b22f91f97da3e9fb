"""One LoRA layer (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models").

A frozen weight W (out, in) is adapted by a low-rank product instead of being changed itself:

    W' = W + scale * (alpha / r) * B A,     A = `down` (r, in),  B = `up` (out, r),  r << min(in, out)

so y = W' x = W x + scale * (alpha / r) * B (A x): the adapter runs beside the layer (runtime) or is added
into W (merged). B starts at zero in training, so an untrained adapter changes nothing; alpha / r keeps the
update's size independent of the rank. For a convolution, A is a convolution with the layer's kernel,
stride and padding (r, in, kh, kw) and B a 1x1 convolution (out, r, 1, 1), as kohya's LoCon and PEFT do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LoraLayer:
    down: torch.Tensor  # A: (r, in) for a linear layer, (r, in, kh, kw) for a convolution
    up: torch.Tensor  # B: (out, r) or (out, r, 1, 1)
    alpha: float  # the file's alpha; alpha == r means a factor of 1

    @property
    def rank(self) -> int:
        return self.down.shape[0]

    @property
    def factor(self) -> float:
        return self.alpha / self.rank

    def fitted_to(self, module: nn.Module) -> LoraLayer:
        """The same adapter with A and B shaped for `module` (kohya stores a linear layer's A and B as 1x1
        convolutions when the original model had one there, and PEFT a 1x1 convolution's as matrices)."""
        down, up = self.down, self.up
        if isinstance(module, nn.Linear):
            down, up = down.flatten(1), up.flatten(1)  # (r, in, 1, 1) -> (r, in); (out, r, 1, 1) -> (out, r)
        elif down.dim() == 2:
            down, up = down[:, :, None, None], up[:, :, None, None]  # (r, in) -> (r, in, 1, 1)
        dtype = module.weight.dtype
        return LoraLayer(down.to(dtype), up.to(dtype), self.alpha)

    def expected_shapes(self, module: nn.Module) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The shapes A and B must have to adapt `module` with this rank."""
        weight = module.weight  # (out, in) or (out, in, kh, kw)
        if isinstance(module, nn.Linear):
            return (self.rank, weight.shape[1]), (weight.shape[0], self.rank)
        return (self.rank, *weight.shape[1:]), (weight.shape[0], self.rank, 1, 1)

    def delta_weight(self) -> torch.Tensor:
        """B A, shaped like the layer's weight: (out, in) or (out, in, kh, kw), computed in float32."""
        down, up = self.down.float(), self.up.float()
        product = up.flatten(1) @ down.flatten(1)  # (out, r) @ (r, in * kh * kw) -> (out, in * kh * kw)
        return product.reshape(up.shape[0], *down.shape[1:])

    def forward(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """B (A x) for the layer's input x (not yet scaled), the way PEFT computes it at runtime."""
        down, up = self.down.to(x), self.up.to(x)  # no-ops unless the model moved to another device or dtype
        if isinstance(module, nn.Linear):
            return F.linear(F.linear(x, down), up)  # (..., in) -> (..., r) -> (..., out)
        h = F.conv2d(x, down, None, module.stride, module.padding, module.dilation)  # (B, in, H, W) -> (B, r, h, w)
        return F.conv2d(h, up)  # (B, r, h, w) -> (B, out, h, w)
