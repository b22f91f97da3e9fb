"""Random weights that exercise every path of a model in a parity test.

Default inits leave norms at weight 1 / bias 0 (and some libraries zero whole layers), which would
hide a swapped or skipped norm. Perturbing them makes every parameter matter.
"""

import torch
from torch import nn


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        if "norm" in name and name.endswith("weight"):
            p.copy_(1.0 + 0.1 * noise)
        elif name.endswith("bias") or p.abs().max() == 0:
            p.copy_(0.02 * noise)
    return model.eval()
