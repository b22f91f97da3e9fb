"""AID's outer and inner attention: the formulas against a float64 loop, keyframes at weights 0 and 1, rows apart."""

from __future__ import annotations

import pytest
import torch

from transformer.attention import multi_head_attention
from transformer.interpolated_attention import interpolated_attention

HEADS = 2


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kind: str) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v or ReLU(q k^T / sqrt(d)) / L v for one row (N, H*D), head by head, in float64."""
    q, k, v = q.double(), k.double(), v.double()
    d = q.shape[-1] // HEADS
    heads = []
    for h in range(HEADS):
        cols = slice(h * d, (h + 1) * d)
        scores = q[:, cols] @ k[:, cols].T / d**0.5  # (N, L)
        weights = scores.softmax(-1) if kind == "softmax" else scores.relu() / k.shape[0]
        heads.append(weights @ v[:, cols])  # (N, D)
    return torch.cat(heads, -1)  # (N, H*D)


def random_inputs(rows: int = 3, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(rows, 5, 8, generator=gen)  # (B, N, H*D)
    k, v, k_a, v_a, k_b, v_b = (torch.randn(rows, 7, 8, generator=gen) for _ in range(6))  # (B, M, H*D)
    return q, k, v, k_a, v_a, k_b, v_b


@pytest.mark.parametrize("kind", ["softmax", "relu"])
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("variant", ["outer", "inner"])
def test_formulas_match_a_float64_loop(variant, fused, kind):
    q, k, v, k_a, v_a, k_b, v_b = random_inputs()
    weight = torch.tensor([0.2, 0.5, 0.9])
    ours = interpolated_attention(q, k, v, (k_a, v_a, k_b, v_b), weight, HEADS, variant, kind, fused)
    for row, a in enumerate(weight.tolist()):
        own_k, own_v = (k[row], v[row]) if fused else (k[row, :0], v[row, :0])  # [K; ...] or nothing of the frame's
        if variant == "outer":  # (1 - a) Attn(Q, [K; K_A], [V; V_A]) + a Attn(Q, [K; K_B], [V; V_B])
            to_a = naive_attention(q[row], torch.cat([own_k, k_a[row]]), torch.cat([own_v, v_a[row]]), kind)
            to_b = naive_attention(q[row], torch.cat([own_k, k_b[row]]), torch.cat([own_v, v_b[row]]), kind)
            expected = (1 - a) * to_a + a * to_b
        else:  # Attn(Q, [K; (1 - a) K_A + a K_B], [V; (1 - a) V_A + a V_B])
            k_mix, v_mix = (1 - a) * k_a[row] + a * k_b[row], (1 - a) * v_a[row] + a * v_b[row]
            expected = naive_attention(q[row], torch.cat([own_k, k_mix]), torch.cat([own_v, v_mix]), kind)
        assert torch.allclose(ours[row].double(), expected, atol=1e-6), row


@pytest.mark.parametrize("kind", ["softmax", "relu"])
@pytest.mark.parametrize("variant", ["outer", "inner"])
def test_a_keyframe_at_its_own_weight_gets_its_own_attention(variant, kind):
    """Weight 0 with the frame = keyframe A: Attn(Q, [K_A; K_A], [V_A; V_A]) = Attn(Q, K_A, V_A), every key twice;
    weight 1 likewise for B. Equal up to float32 rounding of the longer sums."""
    q, _, _, k_a, v_a, k_b, v_b = random_inputs()
    ends = (k_a, v_a, k_b, v_b)
    for weight, k, v in ((0.0, k_a, v_a), (1.0, k_b, v_b)):
        ours = interpolated_attention(q, k, v, ends, torch.full((3,), weight), HEADS, variant, kind)
        plain = multi_head_attention(q, k, v, HEADS, kind=kind)
        assert (ours - plain).abs().max() < 1e-6, weight
        # and the weight matters: the other end gives something else
        other = interpolated_attention(q, k, v, ends, torch.full((3,), 1.0 - weight), HEADS, variant, kind)
        assert (other - plain).abs().max() > 1e-2


@pytest.mark.parametrize("variant", ["outer", "inner"])
def test_each_row_uses_its_own_weight_and_ends(variant):
    q, k, v, k_a, v_a, k_b, v_b = random_inputs()
    weight = torch.tensor([0.1, 0.6, 0.3])
    batched = interpolated_attention(q, k, v, (k_a, v_a, k_b, v_b), weight, HEADS, variant)
    for row in range(3):
        one = slice(row, row + 1)
        alone = interpolated_attention(q[one], k[one], v[one], (k_a[one], v_a[one], k_b[one], v_b[one]),
                                       weight[one], HEADS, variant)  # fmt: skip
        assert torch.allclose(batched[one], alone, atol=1e-7), row


def test_an_unknown_variant_is_refused():
    q, k, v, *ends = random_inputs()
    with pytest.raises(ValueError, match="outer, inner"):
        interpolated_attention(q, k, v, tuple(ends), torch.zeros(3), HEADS, "middle")
