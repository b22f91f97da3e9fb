"""Position-wise feed-forward blocks: the MLP after each attention layer.

Two flavours are used by Stable Diffusion:
- GEGLU (Shazeer 2020, "GLU Variants Improve Transformer"): FF(x) = W2 (GELU(x W) * x V), with W and
  V fused into one projection `net.0.proj`; the UNet's transformer blocks use it. With a Swish (SiLU)
  gate it is SwiGLU, which MobileDiffusion uses (cheaper than GELU on mobile hardware).
- quick-GELU MLP (OpenAI CLIP): fc2(quick_gelu(fc1(x))), with quick_gelu(x) = x * sigmoid(1.702 x).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """CLIP's cheap GELU approximation, x * sigmoid(1.702 x); the weights were trained with it."""
    return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"quick_gelu": quick_gelu, "gelu": F.gelu, "silu": F.silu, "relu": F.relu}  # relu: Vaswani et al.'s FFN


class GEGLU(nn.Module):
    """Gated GELU: one projection to twice the width, half of it gating the other half (`act`: the gate)."""

    def __init__(self, dim_in: int, dim_out: int, act: str = "gelu") -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)
        self.act = ACTIVATIONS[act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)  # (B, N, C) -> 2 x (B, N, 4C)
        return x * self.act(gate)  # (B, N, 4C)


class FeedForward(nn.Module):
    """ldm's FeedForward with GEGLU; keys `net.0.proj`, `net.2` as in SD checkpoints.

    SD: mult 4 (the gated projection is 8x the width), GELU gate; MobileDiffusion: mult 3 (6x), Swish gate.
    """

    def __init__(self, dim: int, mult: int = 4, act: str = "gelu") -> None:
        super().__init__()
        inner = dim * mult
        self.net = nn.Sequential(GEGLU(dim, inner, act), nn.Dropout(0.0), nn.Linear(inner, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, N, C) -> (B, N, 4C) -> (B, N, C)


class CLIPMLP(nn.Module):
    """CLIP's two-layer MLP; keys `fc1`, `fc2` as in transformers' CLIPTextModel.

    OpenAI's CLIP (SD 1.x) uses quick-GELU; OpenCLIP's towers (SD 2.x) use exact GELU.
    """

    def __init__(self, dim: int, hidden: int, act: str = "quick_gelu") -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = ACTIVATIONS[act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))  # (B, 77, 768) -> (B, 77, 3072) -> (B, 77, 768)
