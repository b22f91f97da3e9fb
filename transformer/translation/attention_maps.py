"""The attention probabilities softmax(Q K^T / sqrt(d)) themselves, for plotting.

`multi_head_attention` never materialises them (scaled_dot_product_attention fuses the softmax away), so a
model that wants to show its attention maps recomputes them here; a test checks that weights @ V equals
`multi_head_attention`'s output, so the maps are the ones the model used.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange


def attention_weights(
    q: torch.Tensor, k: torch.Tensor, heads: int, mask: torch.Tensor | None = None, causal: bool = False
) -> torch.Tensor:
    """(B, H, N, M) probabilities for q (B, N, H*D), k (B, M, H*D); masks as in `multi_head_attention`."""
    q, k = (rearrange(t, "b n (h d) -> b h n d", h=heads) for t in (q, k))  # (B, N, H*D) -> (B, H, N, D)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, N, M)
    allowed = torch.ones(scores.shape[-2:], dtype=torch.bool, device=q.device)
    if causal:
        allowed = allowed.tril()
    if mask is not None:
        allowed = allowed & mask
    return scores.masked_fill(~allowed, float("-inf")).softmax(-1)
