"""Carry a plan's proportions to another UNet size (for the SD 1.5-size params/FLOPs/latency columns).

Random SD-size weights have no sensitivities worth measuring, so the SD-size plan copies the shape of the
small model's plan: for each kind of layer (ResBlock hidden widths, attn1 heads, attn2 heads, ff width)
the fraction of that kind's parameters the plan removed. Every layer of a kind then loses that fraction
of its channel groups (times one scale, bisected so the whole UNet loses the target), the groups with the
smallest L1 norm of their reading weights first (the data-free criterion of Li et al. 2017). Whole-layer
drops are not carried over: the two UNets' blocks do not correspond one to one.
"""

from __future__ import annotations

from torch import nn

from sd.prune.allocation import Saved
from sd.prune.sensitivity import reading_weights
from unet.pruned import PrunePlan, prunable_layers

KINDS = ("ResBlock", "attn1", "attn2", "ff")


def kind_fractions(unet: nn.Module, plan: PrunePlan) -> dict[str, float]:
    """For each kind, the fraction of its layers' parameters that `plan` removes (a dropped transformer
    counts as dropping its attn1, attn2 and ff)."""
    saved = Saved(unet)
    removed = {k: 0 for k in KINDS}
    total = {k: 0 for k in KINDS}
    for layer in prunable_layers(unet):
        if layer.kind not in KINDS:
            continue
        whole = saved(PrunePlan(drop=(layer.path,)))
        total[layer.kind] += whole
        if layer.path in plan.drop or layer.parent in plan.drop:
            removed[layer.kind] += whole
        elif layer.path in plan.remove:
            removed[layer.kind] += saved(PrunePlan(remove={layer.path: plan.remove[layer.path]}))
    return {k: removed[k] / total[k] if total[k] else 0.0 for k in KINDS}


def transferred_plan(unet: nn.Module, fractions: dict[str, float], target: float = 0.3) -> PrunePlan:
    """Groups removed per layer in the proportions `fractions`, scaled until `target` of `unet` is removed."""
    saved = Saved(unet)
    layers = [layer for layer in prunable_layers(unet) if layer.kind in KINDS and layer.groups]
    order = {}
    for layer in layers:
        weight, size = reading_weights(unet, layer)
        norms = weight.detach().abs().transpose(0, 1).reshape(layer.groups, size, -1).sum((1, 2))  # (groups,)
        # On the meta device (shapes only: parameter and FLOP counts) any order gives the same counts.
        order[layer.path] = list(range(layer.groups)) if norms.is_meta else norms.argsort().tolist()

    def plan_at(scale: float) -> PrunePlan:
        remove = {}
        for layer in layers:
            k = min(layer.groups - 1, round(scale * fractions[layer.kind] * layer.groups))
            if k:
                remove[layer.path] = tuple(order[layer.path][:k])
        return PrunePlan(remove=remove)

    lo, hi = 0.0, 1.0 / max(max(fractions.values()), 1e-6)
    for _ in range(30):  # bisect the scale: removed fraction grows with it
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if saved(plan_at(mid)) < target * saved.total else (lo, mid)
    return plan_at(hi)
