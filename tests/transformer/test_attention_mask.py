"""The optional `mask` of the shared multi_head_attention: existing calls unchanged, masked keys ignored."""

from __future__ import annotations

import torch

from transformer.attention import multi_head_attention
from transformer.translation.attention_maps import attention_weights


def _qkv(b: int = 2, n: int = 5, m: int = 7, heads: int = 2, d: int = 8) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(b, length, heads * d, generator=g) for length in (n, m, m))


def test_all_true_mask_is_no_mask() -> None:
    q, k, v = _qkv(n=7)
    ones = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    torch.testing.assert_close(multi_head_attention(q, k, v, 2, mask=ones), multi_head_attention(q, k, v, 2))
    torch.testing.assert_close(
        multi_head_attention(q, k, v, 2, causal=True, mask=ones), multi_head_attention(q, k, v, 2, causal=True)
    )


def test_masked_keys_are_ignored() -> None:
    q, k, v = _qkv()
    mask = torch.tensor([[True] * 4 + [False] * 3, [True] * 7])[:, None, None, :]  # (2, 1, 1, 7)
    out = multi_head_attention(q, k, v, 2, mask=mask)
    k2, v2 = k.clone(), v.clone()
    k2[0, 4:], v2[0, 4:] = 100.0, -100.0  # change only the hidden keys and values of sentence 0
    torch.testing.assert_close(multi_head_attention(q, k2, v2, 2, mask=mask), out)
    # and sentence 0 equals attention over its first 4 keys alone
    torch.testing.assert_close(out[:1], multi_head_attention(q[:1], k[:1, :4], v[:1, :4], 2))


def test_attention_weights_are_the_ones_used() -> None:
    """weights @ V reproduces multi_head_attention, with a padding mask and causality combined."""
    q, k, v = _qkv(n=7)
    mask = torch.tensor([[True] * 5 + [False] * 2, [True] * 7])[:, None, None, :]
    w = attention_weights(q, k, 2, mask, causal=True)  # (2, 2, 7, 7)
    assert torch.allclose(w.sum(-1), torch.ones(2, 2, 7))
    assert w[0, :, :, 5:].abs().max() == 0 and w.triu(1).abs().max() == 0
    vh = v.view(2, 7, 2, 8).transpose(1, 2)  # (B, H, M, D)
    out = (w @ vh).transpose(1, 2).reshape(2, 7, 16)
    torch.testing.assert_close(out, multi_head_attention(q, k, v, 2, causal=True, mask=mask), atol=1e-5, rtol=1e-5)
