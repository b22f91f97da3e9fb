"""A tiny random-weight checkpoint and a plan that cuts every kind of prunable unit of TINY_UNET."""

import pytest

from tests.tiny_checkpoint import tiny_checkpoint
from unet.pruned import PrunePlan

# Every kind of cut: ResBlocks dropped with an identity skip (input_blocks.1.0) and a 1x1-conv skip
# (output_blocks.0.0), a whole SpatialTransformer, each kind of sub-layer, GroupNorm groups, heads, FF groups.
EVERY_KIND = PrunePlan(
    drop=("input_blocks.1.0", "output_blocks.0.0", "middle_block.1", "output_blocks.2.1.transformer_blocks.0.attn1",
          "input_blocks.3.1.transformer_blocks.0.attn2", "output_blocks.3.1.transformer_blocks.0.ff"),
    remove={"middle_block.0": (0, 3, 31), "output_blocks.1.0": tuple(range(0, 32, 3)),
            "input_blocks.3.1.transformer_blocks.0.attn1": (1, 2), "output_blocks.1.1.transformer_blocks.0.attn2": (0,),
            "output_blocks.1.1.transformer_blocks.0.ff": (0, 5, 7, 31)},
)  # fmt: skip
DROPS_ONLY = PrunePlan(drop=EVERY_KIND.drop)


@pytest.fixture(scope="module")
def checkpoint():
    return tiny_checkpoint(seed=3)
