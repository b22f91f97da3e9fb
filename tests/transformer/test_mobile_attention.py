"""MobileDiffusion's transformer switches: shared K/V, ReLU attention, SwiGLU, cross-attention-only blocks."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from transformer.attention import CrossAttention, multi_head_attention
from transformer.feed_forward import FeedForward
from transformer.spatial_transformer import BasicTransformerBlock, BlockOptions


def naive_relu_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """ReLU(q k^T / sqrt(d)) / L v, one batch item, head and query at a time."""
    b, n, inner = q.shape
    length, d = k.shape[1], inner // heads
    out = torch.zeros(b, n, inner, dtype=torch.float64)
    for bi in range(b):
        for h in range(heads):
            cols = slice(h * d, (h + 1) * d)
            for i in range(n):
                for j in range(length):
                    w = max(0.0, float(q[bi, i, cols] @ k[bi, j, cols]) / d**0.5) / length
                    out[bi, i, cols] += w * v[bi, j, cols].double()
    return out


def test_relu_attention_matches_naive_reference():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 5, 8), torch.randn(2, 7, 8), torch.randn(2, 7, 8)
    ours = multi_head_attention(q, k, v, heads=2, kind="relu")
    assert ours.shape == (2, 5, 8)
    assert torch.allclose(ours.double(), naive_relu_attention(q, k, v, 2), atol=1e-6)
    # and it is not softmax attention
    assert not torch.allclose(ours, multi_head_attention(q, k, v, heads=2), atol=1e-3)


def test_shared_kv_has_one_projection_serving_keys_and_values():
    torch.manual_seed(0)
    attn = CrossAttention(16, None, heads=2, dim_head=8, shared_kv=True)
    names = {n for n, _ in attn.named_parameters()}
    assert names == {"to_q.weight", "to_kv.weight", "to_out.0.weight", "to_out.0.bias"}
    x = torch.randn(2, 6, 16)
    kv = attn.to_kv(x)
    expected = attn.to_out(multi_head_attention(attn.to_q(x), kv, kv, 2))
    assert torch.equal(attn(x), expected)
    separate = CrossAttention(16, None, heads=2, dim_head=8)
    assert sum(p.numel() for p in separate.parameters()) - sum(p.numel() for p in attn.parameters()) == 16 * 16


def test_swiglu_feed_forward_and_its_width():
    torch.manual_seed(0)
    ff = FeedForward(8, mult=3, act="silu")
    assert ff.net[0].proj.weight.shape == (48, 8)  # 6x the width, SD's is 8x
    x = torch.randn(2, 4, 8)
    h, gate = ff.net[0].proj(x).chunk(2, dim=-1)
    assert torch.equal(ff(x), ff.net[2](h * F.silu(gate)))


def test_cross_attention_only_block_skips_self_attention():
    torch.manual_seed(0)
    block = BasicTransformerBlock(16, 2, 8, context_dim=12, opts=BlockOptions(self_attention=False))
    assert not any(n.startswith(("attn1", "norm1")) for n, _ in block.named_parameters())
    x, context = torch.randn(2, 9, 16), torch.randn(2, 77, 12)
    h = x + block.attn2(block.norm2(x), context)
    assert torch.equal(block(x, context), h + block.ff(block.norm3(h)))
