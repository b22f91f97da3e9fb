"""The mobile switches of UNetConfig (MobileDiffusion): each keeps shapes, trains, and changes only what it says."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from sd.loading.config_json import config_from_dict, config_to_dict
from unet.config import MOBILE_SD_UNET, MOBILE_TINY_UNET, TINY_UNET, UNetConfig
from unet.model import UNetModel
from unet.separable_conv import SeparableConv2d

SMALL = UNetConfig(
    model_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2, 1), num_heads=2,
    context_dim=16, norm_groups=8,
)  # fmt: skip
SWITCHES = {
    "shared_kv": replace(SMALL, shared_kv=True),
    "separable": replace(SMALL, separable_levels=(1,)),
    "swiglu": replace(SMALL, ff_activation="silu"),
    "ff_6x": replace(SMALL, ff_mult=3),
    "relu_attention": replace(SMALL, attention="relu"),
    "cross_only_top": replace(SMALL, cross_attention_only=(1,)),
    "per_level_blocks_and_depth": replace(SMALL, num_res_blocks=(0, 2), transformer_depth=(1, 2)),
    "mobile_tiny": replace(MOBILE_TINY_UNET, model_channels=32, num_heads=2, context_dim=16, norm_groups=8),
}


@pytest.mark.parametrize("name", list(SWITCHES))
def test_switch_keeps_shapes_and_trains(name: str):
    torch.manual_seed(0)
    model = UNetModel(SWITCHES[name])
    x = torch.randn(2, 4, 8, 8)
    out = model(x, torch.tensor([10, 500]), torch.randn(2, 77, 16))
    assert out.shape == x.shape
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_switches_change_only_their_keys():
    base = set(UNetModel(SMALL).state_dict())
    shared = set(UNetModel(SWITCHES["shared_kv"]).state_dict())
    assert {k for k in shared - base} == {k.replace("to_k", "to_kv") for k in base if "attn1.to_k" in k}
    assert {k for k in base - shared} == {k for k in base if "attn1.to_k" in k or "attn1.to_v" in k}
    assert not any("attn2.to_kv" in k for k in shared)  # cross-attention keeps separate K and V

    sep = set(UNetModel(SWITCHES["separable"]).state_dict())
    added = sep - base
    assert added and all(".depthwise." in k or ".pointwise." in k for k in added)
    top_level = ("input_blocks.1.", "output_blocks.2.", "output_blocks.3.")  # 8x8 ResBlocks keep full convs
    assert not any(k.startswith(top_level) for k in added)

    cross = set(UNetModel(SWITCHES["cross_only_top"]).state_dict())
    assert cross < base
    assert all("attn1" in k or "norm1" in k for k in base - cross)
    top_transformers = ("input_blocks.1.1.", "output_blocks.2.1.", "output_blocks.3.1.")
    assert {k for k in base - cross} == {k for k in base if k.startswith(top_transformers) and ".attn1." in k
                                         or k.startswith(top_transformers) and ".norm1." in k}  # fmt: skip

    for name in ("swiglu", "relu_attention"):  # no parameters of their own
        assert set(UNetModel(SWITCHES[name]).state_dict()) == base
    ff = UNetModel(SWITCHES["ff_6x"]).state_dict()["middle_block.1.transformer_blocks.0.ff.net.0.proj.weight"]
    assert ff.shape == (6 * 64, 64)  # the gated projection is 6x the width (SD: 8x)


def test_default_switches_are_sd():
    assert not TINY_UNET.is_mobile and MOBILE_TINY_UNET.is_mobile and MOBILE_SD_UNET.is_mobile
    keys = UNetModel(TINY_UNET).state_dict()
    assert not any(s in k for k in keys for s in ("to_kv", "depthwise", "pointwise"))


@pytest.mark.parametrize("config", [MOBILE_TINY_UNET, MOBILE_SD_UNET, SWITCHES["per_level_blocks_and_depth"]])
def test_mobile_configs_round_trip_through_json(config: UNetConfig):
    import json

    assert config_from_dict(UNetConfig, json.loads(json.dumps(config_to_dict(config))), "test") == config


def test_separable_conv_equals_explicit_depthwise_then_pointwise():
    torch.manual_seed(0)
    conv = SeparableConv2d(3, 5)
    x = torch.randn(2, 3, 6, 7)
    padded = F.pad(x, (1, 1, 1, 1))
    depthwise = conv.depthwise.bias[None, :, None, None].expand(2, 3, 6, 7).clone()
    for dy in range(3):
        for dx in range(3):  # each channel with its own 3x3 kernel, no mixing across channels
            depthwise += conv.depthwise.weight[None, :, 0, dy, dx, None, None] * padded[:, :, dy : dy + 6, dx : dx + 7]
    pointwise = torch.einsum("oc,bchw->bohw", conv.pointwise.weight[:, :, 0, 0], depthwise)
    expected = pointwise + conv.pointwise.bias[None, :, None, None]
    assert torch.allclose(conv(x), expected, atol=1e-5)  # float32 sums in a different order
    assert sum(p.numel() for p in conv.parameters()) == 3 * 9 + 3 + 3 * 5 + 5
