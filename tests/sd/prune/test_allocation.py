"""Allocation removes the target fraction of parameters (within its tolerance) at the lowest predicted cost."""

import random

import pytest

from sd.prune.allocation import allocate, layer_options
from sd.prune.sensitivity import LayerSensitivity, Sensitivity, curve_points
from sd.prune.surgery import param_count, prune_unet
from unet.pruned import prunable_layers


def synthetic(unet, seed: int, free: str | None = None) -> Sensitivity:
    """Random but plausible sensitivities: curves rising with the fraction removed; `free` costs nothing."""
    rng = random.Random(seed)
    entries = []
    for layer in prunable_layers(unet):
        scale = 0.0 if layer.path == free else rng.uniform(0.001, 0.1)
        entry = LayerSensitivity(layer, scale * rng.uniform(1.0, 2.0))
        if layer.groups:
            entry.group_order = rng.sample(range(layer.groups), layer.groups)
            entry.curve = [(k, scale * (k / layer.groups) ** 2) for k in curve_points(layer.groups)]
        entries.append(entry)
    return Sensitivity(0.05, entries, 16)


@pytest.mark.parametrize("target", [0.1, 0.3, 0.5])
def test_allocation_hits_the_target_within_tolerance(checkpoint, target):
    unet = checkpoint.unet
    total = param_count(unet)
    plan, saved, cost = allocate(layer_options(unet, synthetic(unet, seed=int(target * 10))), total, target, 0.005)
    removed = 1 - param_count(prune_unet(unet, plan)) / total
    assert removed == pytest.approx(saved / total, abs=1e-12)  # the options' counts are exact
    # Buckets of 1/20000 of the UNet, one rounding per layer: at most 15 buckets (0.075%) past the band.
    assert target <= removed <= target + 0.005 + 15 / 20_000
    assert cost > 0


def test_a_free_layer_is_dropped_first(checkpoint):
    unet = checkpoint.unet
    free = "output_blocks.0.0"  # the largest ResBlock: dropping it alone removes ~12% of the UNet
    plan, _, _ = allocate(layer_options(unet, synthetic(unet, seed=1, free=free)), param_count(unet), 0.2, 0.005)
    assert free in plan.drop


def test_transferred_plan_keeps_the_proportions_and_hits_the_target(checkpoint):
    from sd.prune.transfer import kind_fractions, transferred_plan
    from unet.pruned import PrunePlan

    unet = checkpoint.unet
    source = PrunePlan(drop=("middle_block.1",), remove={"output_blocks.1.0": tuple(range(16))})
    fractions = kind_fractions(unet, source)
    assert all(0.1 < fractions[k] < 0.3 for k in ("attn1", "attn2", "ff"))  # one of seven transformers dropped
    assert 0 < fractions["ResBlock"] < 0.5
    plan = transferred_plan(unet, fractions, target=0.2)
    removed = 1 - param_count(prune_unet(unet, plan)) / param_count(unet)
    assert 0.2 <= removed <= 0.23  # the last bisection step moves whole groups in every layer
    assert not plan.drop
