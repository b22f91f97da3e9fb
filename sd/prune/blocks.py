"""What a pruned unit leaves behind: modules with no weights (or only the skip convolution).

Both keep the checkpoint's key names for what survives: a dropped ResBlock still answers to
`input_blocks.4.0.skip_connection.weight`, and a dropped sub-layer has no keys at all.
"""

from __future__ import annotations

import torch
from torch import nn


class SkipPath(nn.Module):
    """A ResBlock whose residual branch was pruned: out = skip(x) (identity or its 1x1 conv).

    Not a ResBlock, so TimestepEmbedSequential calls it with x alone (no time embedding is needed).
    """

    def __init__(self, skip_connection: nn.Module) -> None:
        super().__init__()
        self.skip_connection = skip_connection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip_connection(x)  # (B, C_in, H, W) -> (B, C_out, H, W)


class NoResidual(nn.Module):
    """Stands in for a pruned sub-layer f in x + f(norm(x)): it adds nothing, so the block computes x + 0."""

    def forward(self, *args: object) -> float:
        return 0.0
