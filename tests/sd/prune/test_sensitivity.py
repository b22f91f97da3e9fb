"""Sensitivities measure what removal costs: zeroing in place gives the pruned model's loss exactly."""

import pytest
import torch

from sd.eval.held_out import HeldOutBatch, denoising_loss
from sd.prune.sensitivity import curve_points, measure, run_sensitivity, taylor_scores
from sd.prune.surgery import prune_unet
from tests.random_weights import randomize_
from unet.config import UNetConfig
from unet.model import UNetModel
from unet.pruned import PrunePlan, prunable_layers

# One level, one ResBlock down, two up, a transformer in each: 10 layers, a few seconds for the sweep.
MICRO = UNetConfig(model_channels=32, channel_mult=(1,), num_res_blocks=1, attention_resolutions=(1,), num_heads=2,
                   context_dim=16, norm_groups=8)  # fmt: skip


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    unet = randomize_(UNetModel(MICRO), 0)
    gen = torch.Generator().manual_seed(1)
    batch = HeldOutBatch(torch.randn(8, 4, 8, 8, generator=gen), torch.arange(8) * 120,
                         torch.randn(8, 77, 16, generator=gen), torch.randn(8, 4, 8, 8, generator=gen))  # fmt: skip
    return unet, batch


def test_measured_increase_is_the_pruned_models_loss(setup):
    unet, batch = setup
    base = denoising_loss(unet, batch)
    plan = PrunePlan(drop=("output_blocks.0.1.transformer_blocks.0.ff",), remove={"middle_block.0": (0, 5)})
    assert measure(unet, batch, plan, base) == pytest.approx(denoising_loss(prune_unet(unet, plan), batch) - base,
                                                             abs=1e-6)  # fmt: skip


def test_taylor_estimate_tracks_the_measured_change_of_one_group(setup):
    """First order: for a small cut the estimate is close to the measured change (within 30% here)."""
    unet, batch = setup
    layer = next(layer for layer in prunable_layers(unet) if layer.kind == "ResBlock")
    scores = taylor_scores(unet.requires_grad_(True), batch, [layer])[layer.path]
    unet.requires_grad_(False)
    base = denoising_loss(unet, batch)
    g = max(range(layer.groups), key=lambda i: abs(scores[i]))
    measured = measure(unet, batch, PrunePlan(remove={layer.path: (g,)}), base)
    assert measured == pytest.approx(scores[g], rel=0.3)


def test_sweep_covers_every_layer_and_curve(setup):
    unet, batch = setup
    result = run_sensitivity(unet, batch, progress=False)
    assert [e.layer.path for e in result.layers] == [layer.path for layer in prunable_layers(unet)]
    assert result.base_loss == pytest.approx(denoising_loss(unet, batch))
    for e in result.layers:
        assert [k for k, _ in e.curve] == curve_points(e.layer.groups)
        assert sorted(e.group_order) == list(range(e.layer.groups))
        assert e.drop != 0.0


def test_a_pruned_model_can_be_measured_and_pruned_again(setup, tmp_path):
    """Iterative pruning: sensitivities of a pruned UNet, and a second cut recorded in the original numbering."""
    from unet.pruned import build_pruned_unet

    unet, batch = setup
    first = PrunePlan(drop=("output_blocks.0.1.transformer_blocks.0.ff",), remove={"middle_block.0": (0, 5)})
    pruned = prune_unet(unet, first)
    base = denoising_loss(pruned, batch)
    second = PrunePlan(remove={"middle_block.0": (0, 4)})  # of the 6 groups left: original groups 1 and 6
    twice = prune_unet(pruned, second)
    assert measure(pruned, batch, second, base) == pytest.approx(denoising_loss(twice, batch) - base, abs=1e-6)
    assert twice.prune_plan == PrunePlan(drop=first.drop, remove={"middle_block.0": (0, 1, 5, 6)})
    once = prune_unet(unet, twice.prune_plan)  # the composed plan rebuilds the same model from the original
    assert torch.equal(once(batch.z_t, batch.t, batch.context), twice(batch.z_t, batch.t, batch.context))
    rebuilt = build_pruned_unet(MICRO, twice.prune_plan)
    rebuilt.load_state_dict(twice.state_dict(), strict=True)
    result = run_sensitivity(pruned, batch, progress=False)
    assert next(e for e in result.layers if e.layer.path == "middle_block.0").layer.groups == 6
