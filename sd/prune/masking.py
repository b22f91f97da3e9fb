"""Masking: the same cuts expressed as zeros in the unpruned model (what torch.nn.utils.prune does).

A masked model keeps every tensor at full size, so it is exactly as slow as the unpruned one: it is the
reference that surgery must match (same outputs), and the "masking only" row of the benchmark.

The masks are read off the surgery itself: the surgery runs on a copy whose every entry holds its own
index, and whatever index does not survive is masked. Masks and surgery therefore cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.utils.prune as torch_prune
from torch import nn

from sd.prune.surgery import skeleton
from unet.pruned import PrunePlan, apply_plan_


def shared_copy(unet: nn.Module) -> nn.Module:
    """A second module object over the same weight tensors (no copy): masks added to it leave `unet` alone."""
    twin = skeleton(unet)
    twin.load_state_dict(unet.state_dict(), strict=True, assign=True)
    return twin.eval()


def removed_masks(unet: nn.Module, plan: PrunePlan) -> dict[str, torch.Tensor]:
    """{parameter name: bool tensor, True where the plan removes the entry}, for every parameter it touches."""
    ids = skeleton(unet)
    # Entry i of each parameter holds i (float32 is exact below 2^24; float64 beyond).
    ids.load_state_dict({
        name: torch.arange(p.numel(), dtype=torch.float32 if p.numel() < 2**24 else torch.float64).view(p.shape)
        for name, p in unet.state_dict().items()
    }, assign=True)  # fmt: skip
    survivors = dict(apply_plan_(ids, plan).named_parameters())
    masks = {}
    for name, p in unet.named_parameters():
        removed = torch.ones(p.numel(), dtype=torch.bool)
        if name in survivors:
            removed[survivors[name].detach().flatten().long()] = False
        if removed.any():
            masks[name] = removed.view(p.shape).to(p.device)
    return masks


@contextmanager
def zeroed(unet: nn.Module, masks: dict[str, torch.Tensor]) -> Iterator[nn.Module]:
    """Temporarily zero the masked entries of `unet` in place (cheap enough to try hundreds of units)."""
    params = dict(unet.named_parameters())
    saved = {name: params[name].detach().clone() for name in masks}
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].masked_fill_(mask, 0.0)
    try:
        yield unet
    finally:
        with torch.no_grad():
            for name, value in saved.items():
                params[name].copy_(value)


def torch_masked(unet: nn.Module, plan: PrunePlan) -> nn.Module:
    """The plan applied with torch.nn.utils.prune (weight = weight_orig * mask, recomputed every call)."""
    masked = shared_copy(unet)
    for name, removed in removed_masks(unet, plan).items():
        module, param = name.rsplit(".", 1)
        torch_prune.custom_from_mask(masked.get_submodule(module), param, ~removed)
    return masked


def nonzero_params(module: nn.Module) -> int:
    """Parameters that are not zero, with torch.nn.utils.prune's masks applied (weight = orig * mask)."""
    total = 0
    for name, p in module.named_parameters():
        owner, param = name.rsplit(".", 1)
        if param.endswith("_orig"):
            p = getattr(module.get_submodule(owner), param.removesuffix("_orig"))
        total += int(torch.count_nonzero(p))
    return total
