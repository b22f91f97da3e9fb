"""Attention of an in-between that also looks at two keyframes' keys and values (AID, He et al. 2024, section 3).

For a frame at blend weight a between keyframes A and B, with its own Q, K, V and the keyframes' K_A, V_A, K_B, V_B
at the same layer and step:

    outer: (1 - a) Attn(Q, [K; K_A], [V; V_A]) + a Attn(Q, [K; K_B], [V; V_B])
    inner:           Attn(Q, [K; (1 - a) K_A + a K_B], [V; (1 - a) V_A + a V_B])

[X; Y] stacks along the keys: the frame's own keys first, then the keyframe's (AID's "fused" form, the one its
code runs by default). With `fused=False` the frame's own K, V are left out (AID's plain form):

    outer: (1 - a) Attn(Q, K_A, V_A) + a Attn(Q, K_B, V_B)
    inner:           Attn(Q, (1 - a) K_A + a K_B, (1 - a) V_A + a V_B)

and the inner one on self-attention is DiffMorpher's (Zhang et al. 2024), which lerps the keyframes' K/V.

At a = 0 for a frame that is keyframe A itself (K = K_A, V = V_A) both forms are Attn(Q, [K_A; K_A], [V_A; V_A]),
which equals Attn(Q, K_A, V_A): every key appears twice, so each softmax weight halves and each value counts twice.
ReLU attention divides by the number of keys, so it too is unchanged by the duplication; a = 1 is the same for B.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

VARIANTS = ("outer", "inner")


def interpolated_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    ends: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    weight: torch.Tensor,
    heads: int,
    variant: str = "outer",
    kind: str = "softmax",
    fused: bool = True,
) -> torch.Tensor:
    """q (B, N, H*D), k and v (B, M, H*D); `ends` = K_A, V_A, K_B, V_B, each (B, M', H*D); `weight` a (B,) per row.

    Returns (B, N, H*D), the formula of `variant` above, with `kind` (softmax or relu) attention; `fused` puts the
    frame's own keys and values beside the keyframes'."""
    import torch  # here, not above: the GIF settings read VARIANTS, and `python -m sd gif --help` needs no torch

    from transformer.attention import multi_head_attention

    k_a, v_a, k_b, v_b = ends
    a = weight.to(q.dtype).view(-1, 1, 1)  # (B,) -> (B, 1, 1)

    def attend(keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:  # over [K; keys], or keys alone
        if fused:
            keys, values = torch.cat([k, keys], 1), torch.cat([v, values], 1)  # (B, M + M', H*D)
        return multi_head_attention(q, keys, values, heads, kind=kind)  # (B, N, H*D)

    if variant == "outer":
        return (1 - a) * attend(k_a, v_a) + a * attend(k_b, v_b)
    if variant == "inner":
        return attend((1 - a) * k_a + a * k_b, (1 - a) * v_a + a * v_b)  # keyframes' K/V lerped: (B, M', H*D)
    raise ValueError(f"attention interpolation variant {variant!r}: choose one of {', '.join(VARIANTS)}")
