"""Multi-head scaled dot-product attention (Vaswani et al. 2017, section 3.2).

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V,   computed once per head.
    ReLU attention (Wortsman et al. 2023, used by MobileDiffusion): ReLU(Q K^T / sqrt(d)) / L V, with L the
    number of keys; no softmax (no exp, no row max and sum), cheaper on mobile hardware.

`multi_head_attention` is the one place where heads are split, attended and merged; the CLIP
text encoder, the UNet's spatial transformers and the VAE's mid-block all call it, so only the
projection layers around it differ (their names follow each original checkpoint).

`CrossAttention.hook` is the one way to change what a UNet attention layer does with its projected Q, K and V
(attention interpolation for GIF in-betweens, sd/gif/attention_interpolation.py). It is None unless something
sets it, and then the layer runs its plain attention on the same code path.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def relu_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """ReLU(q k^T / sqrt(D)) / L v for q (B, H, N, D), k and v (B, H, L, D)."""
    scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5  # (B, H, N, D) x (B, H, D, L) -> (B, H, N, L)
    return (F.relu(scores) / k.shape[-2]) @ v  # (B, H, N, L) x (B, H, L, D) -> (B, H, N, D)


def multi_head_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    heads: int,
    causal: bool = False,
    mask: torch.Tensor | None = None,
    kind: str = "softmax",
) -> torch.Tensor:
    """Attend with `heads` heads; q is (B, N, H*D), k and v are (B, M, H*D); `kind` is softmax or relu.

    `mask` (boolean, True = may attend) broadcasts to (B, H, N, M): (B, 1, 1, M) hides padded keys.
    """
    q, k, v = (
        rearrange(t, "b n (h d) -> b h n d", h=heads) for t in (q, k, v)
    )  # (B, N, H*D) -> (B, H, N, D)
    if kind == "relu":
        if mask is not None or causal:
            raise ValueError("ReLU attention here has no masks (the UNet's attention needs none)")
        return rearrange(relu_attention(q, k, v), "b h n d -> b n (h d)")  # (B, H, N, D) -> (B, N, H*D)
    if mask is not None and causal:  # scaled_dot_product_attention takes one or the other: combine them
        n, m = q.shape[-2], k.shape[-2]
        mask = mask & torch.ones(n, m, dtype=torch.bool, device=q.device).tril()  # (B, H|1, N, M)
        causal = False
    # softmax(q k^T / sqrt(D)) v; `causal` masks keys after the query's own position (CLIP's text).
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)  # (B, H, N, D)
    return rearrange(out, "b h n d -> b n (h d)")  # (B, H, N, D) -> (B, N, H*D)


# hook(module, q (B, N, H*D), k (B, M, H*D), v (B, M, H*D)) -> (B, N, H*D): replaces the attention step of one
# CrossAttention; `module.attend` is the plain step, for the rows or steps a hook leaves as they are.
AttentionHook = Callable[["CrossAttention", torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class CrossAttention(nn.Module):
    """ldm's CrossAttention: self-attention when `context` is None, else queries attend to the context.

    Keys `to_q`, `to_k`, `to_v`, `to_out.0` match SD checkpoints (`...attn1.to_q.weight`). With `shared_kv`
    (MobileDiffusion's self-attention) one projection `to_kv` gives both keys and values: K = V = x W_kv
    (then k is v: one tensor).
    """

    def __init__(
        self,
        query_dim: int,
        context_dim: int | None,
        heads: int,
        dim_head: int,
        shared_kv: bool = False,
        kind: str = "softmax",
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads, self.kind, self.shared_kv = heads, kind, shared_kv
        self.is_cross = context_dim is not None  # keys from the text (attn2), not from the pixels (attn1)
        self.hook: AttentionHook | None = None  # None: plain attention; set only for the span of a `with` block
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        if shared_kv:
            self.to_kv = nn.Linear(context_dim or query_dim, inner, bias=False)
        else:
            self.to_k = nn.Linear(context_dim or query_dim, inner, bias=False)
            self.to_v = nn.Linear(context_dim or query_dim, inner, bias=False)
        # A Sequential with a (parameter-free) dropout slot, so the key is `to_out.0` as in ldm.
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        q = self.to_q(x)  # (B, N, C) -> (B, N, H*D)
        if self.shared_kv:
            k = v = self.to_kv(context)  # (B, M, C_ctx) -> (B, M, H*D), serving as keys and values
        else:
            k = self.to_k(context)  # (B, M, C_ctx) -> (B, M, H*D)
            v = self.to_v(context)  # (B, M, C_ctx) -> (B, M, H*D)
        out = self.attend(q, k, v) if self.hook is None else self.hook(self, q, k, v)  # (B, N, H*D)
        return self.to_out(out)  # (B, N, H*D) -> (B, N, C)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """This layer's attention of q (B, N, H*D) over k, v (B, M, H*D) -> (B, N, H*D): softmax or ReLU."""
        return multi_head_attention(q, k, v, self.heads, kind=self.kind)
