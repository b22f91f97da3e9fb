"""Pruning a loaded UNet: a pruned copy, a weightless skeleton, parameter counts.

The surgery itself (the plan, the prunable units, the smaller layers) lives next to the UNet, in
unet/pruned.py, because loading a pruned file rebuilds its shapes; here a plan is the user's input, so a
plan that does not fit the UNet is a UserError.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from sd.errors import UserError
from unet import pruned
from unet.pruned import PrunePlan, apply_plan_, build_pruned_unet


def check_plan(unet: nn.Module, plan: PrunePlan, where: str = "prune plan") -> None:
    """UserError, naming `where` and the entry, unless every cut of `plan` fits `unet`."""
    try:
        pruned.check_plan(unet, plan.normalized())
    except ValueError as error:
        raise UserError(f"{where}: {error}") from None


def prune_unet(unet: nn.Module, plan: PrunePlan) -> nn.Module:
    """A pruned copy of `unet` (the original is left as it was)."""
    check_plan(unet, plan)
    return apply_plan_(copy.deepcopy(unet), plan)


def skeleton(unet: nn.Module) -> nn.Module:
    """A weightless (meta-device) UNet of the same architecture as `unet`, pruned or not."""
    with torch.device("meta"):
        return build_pruned_unet(unet.config, getattr(unet, "prune_plan", None))


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
