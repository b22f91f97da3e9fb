"""Surgery removes parameters and computes what the unpruned model computes with the same units masked."""

import pytest
import torch

from sd.errors import UserError
from sd.prune.masking import nonzero_params, removed_masks, torch_masked, zeroed
from sd.prune.surgery import param_count, prune_unet
from tests.sd.prune.conftest import DROPS_ONLY, EVERY_KIND
from unet.pruned import PrunePlan

# Removing channels changes only the order of a convolution's or matmul's sums: outputs (|eps| ~ 1) then
# agree to float32 rounding. Measured max |difference| 7.6e-7; the tolerance leaves 10x room.
ATOL = 1e-5


def inputs(batch: int = 3):
    gen = torch.Generator().manual_seed(0)
    x, context = torch.randn(batch, 4, 8, 8, generator=gen), torch.randn(batch, 77, 64, generator=gen)
    return x, torch.tensor([10, 500, 990]), context


@pytest.mark.parametrize("plan", [EVERY_KIND, DROPS_ONLY], ids=["every-kind", "drops-only"])
def test_pruned_has_fewer_parameters_exactly_the_unmasked_ones(checkpoint, plan):
    unet = checkpoint.unet
    pruned = prune_unet(unet, plan)
    masked = torch_masked(unet, plan)
    assert param_count(pruned) < param_count(unet) - 500_000
    assert param_count(masked) == param_count(unet)  # masking keeps every tensor
    # Surgery deletes exactly the entries the masks zero (the random weights have no zeros of their own).
    assert nonzero_params(masked) == param_count(pruned)
    assert sum(int(m.sum()) for m in removed_masks(unet, plan).values()) == param_count(unet) - param_count(pruned)


def test_surgery_equals_masked_equivalent(checkpoint):
    unet, x_t = checkpoint.unet, inputs()
    pruned = prune_unet(unet, EVERY_KIND)
    with torch.no_grad():
        reference = unet(*x_t)
        out = pruned(*x_t)
        with zeroed(unet, removed_masks(unet, EVERY_KIND)):
            zeroed_out = unet(*x_t)
        masked_out = torch_masked(unet, EVERY_KIND)(*x_t)
        assert torch.equal(unet(*x_t), reference)  # zeroing was undone
    assert (out - reference).abs().max() > 0.05  # the cut matters ...
    torch.testing.assert_close(out, zeroed_out, atol=ATOL, rtol=0)  # ... and equals the masked model
    torch.testing.assert_close(out, masked_out, atol=ATOL, rtol=0)


def test_dropping_blocks_is_bitwise_the_masked_model(checkpoint):
    """A dropped block leaves x (+ its skip conv); masked, it adds exact zeros: identical bits."""
    x_t = inputs()
    with torch.no_grad():
        pruned, masked = prune_unet(checkpoint.unet, DROPS_ONLY), torch_masked(checkpoint.unet, DROPS_ONLY)
        assert torch.equal(pruned(*x_t), masked(*x_t))


@pytest.mark.parametrize(
    "plan, message",
    [(PrunePlan(drop=("input_blocks.0.0",)), "not a prunable layer"),
     (PrunePlan(remove={"middle_block.1": (0,)}), "no removable channel groups"),
     (PrunePlan(remove={"middle_block.0": tuple(range(32))}), "leave at least one"),
     (PrunePlan(remove={"middle_block.0": (32,)}), "in 0..31")],
)  # fmt: skip
def test_bad_plans_are_user_errors(checkpoint, plan, message):
    with pytest.raises(UserError, match=message):
        prune_unet(checkpoint.unet, plan)


def test_plan_json_round_trip_and_normalisation():
    plan = PrunePlan(drop=("middle_block.1", "middle_block.1.transformer_blocks.0.ff"),
                     remove={"middle_block.1.transformer_blocks.0.attn1": (1,), "middle_block.0": (3, 1, 3)})
    expected = PrunePlan(drop=("middle_block.1",), remove={"middle_block.0": (1, 3)})
    assert PrunePlan.from_json(plan.to_json()) == expected
    with pytest.raises(ValueError, match="not a prune plan"):
        PrunePlan.from_json('{"drop": []}')
