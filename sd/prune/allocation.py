"""Allocation: how much to cut from each layer to remove a target fraction of the UNet's parameters.

Each top-level layer offers options, each with the parameters it removes and its measured loss increase:
    ResBlock            keep | its curve points (k least important GroupNorm groups) | drop the branch
    SpatialTransformer  drop it whole | or, for each of attn1, attn2 and ff independently: keep | curve
                        points | drop (their loss increases add)
The rule: choose one option per layer to

    minimise   sum of the chosen options' loss increases
    subject to target <= removed parameters / UNet parameters <= target + tolerance,

solved exactly by dynamic programming over the removed-parameter count (in buckets of 1/20000 of the
UNet). Losses are assumed to add across layers; the measured loss of the result says how well they do.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass

import numpy as np
from torch import nn

from sd.errors import UserError
from sd.prune.sensitivity import LayerSensitivity, Sensitivity
from sd.prune.surgery import param_count, skeleton
from unet.pruned import PrunePlan, apply_plan_

BUCKETS = 20_000


@dataclass(frozen=True)
class Option:
    plan: PrunePlan
    saved: int  # parameters removed
    cost: float  # predicted denoising-loss increase


def merge(plans: list[PrunePlan]) -> PrunePlan:
    remove: dict[str, tuple[int, ...]] = {}
    for p in plans:
        for path, groups in p.remove.items():
            remove[path] = tuple(sorted(set(remove.get(path, ())) | set(groups)))
    return PrunePlan(tuple(d for p in plans for d in p.drop), remove).normalized()


class Saved:
    """Parameters a plan removes, counted by running the surgery on a weightless (meta) copy of the module
    around each cut (cuts in different layers remove disjoint parameters, so their counts add)."""

    def __init__(self, unet: nn.Module) -> None:
        self.skeleton = skeleton(unet)
        self.total = param_count(self.skeleton)
        self.cache: dict[tuple, int] = {}

    def one(self, path: str, drop: bool, groups: tuple[int, ...] = ()) -> int:
        key = (path, drop, len(groups))  # which groups go does not change how many parameters go
        if key not in self.cache:
            owner_path, name = path.rsplit(".", 1)
            owner = copy.deepcopy(self.skeleton.get_submodule(owner_path))
            before = param_count(owner)
            apply_plan_(owner, PrunePlan(drop=(name,)) if drop else PrunePlan(remove={name: groups}))
            self.cache[key] = before - param_count(owner)
        return self.cache[key]

    def __call__(self, plan: PrunePlan) -> int:
        plan = plan.normalized()
        return sum(self.one(p, True) for p in plan.drop) + sum(self.one(p, False, g) for p, g in plan.remove.items())


def _own_options(entry: LayerSensitivity, saved: Saved) -> list[Option]:
    """keep, each curve point, drop: one layer's options on its own."""
    path = entry.layer.path
    plans = [PrunePlan()] + [PrunePlan(remove={path: tuple(entry.group_order[:k])}) for k, _ in entry.curve]
    costs = [0.0] + [cost for _, cost in entry.curve]
    plans.append(PrunePlan(drop=(path,)))
    costs.append(entry.drop)
    return [Option(p, saved(p), c) for p, c in zip(plans, costs, strict=True)]


def layer_options(unet: nn.Module, sensitivity: Sensitivity) -> list[list[Option]]:
    """The options of every top-level layer (ResBlock or SpatialTransformer)."""
    saved = Saved(unet)
    children: dict[str, list[LayerSensitivity]] = {}
    for entry in sensitivity.layers:
        if entry.layer.parent:
            children.setdefault(entry.layer.parent, []).append(entry)
    options = []
    for entry in sensitivity.layers:
        if entry.layer.parent:
            continue
        if entry.layer.kind == "ResBlock":
            options.append(_own_options(entry, saved))
            continue
        per_child = [_own_options(child, saved) for child in children.get(entry.layer.path, [])]
        combos = [
            Option(merge([o.plan for o in combo]), sum(o.saved for o in combo), sum(o.cost for o in combo))
            for combo in itertools.product(*per_child)
        ]
        drop = PrunePlan(drop=(entry.layer.path,))
        options.append(combos + [Option(drop, saved(drop), entry.drop)])
    return options


def allocate(options: list[list[Option]], total: int, target: float = 0.3, tolerance: float = 0.005):
    """(plan, parameters removed, predicted loss increase) of the cheapest choice within the target band."""
    unit = max(1, total // BUCKETS)
    lo, hi = math.ceil(target * total / unit), math.floor((target + tolerance) * total / unit)
    best = np.full(hi + 1, np.inf)
    best[0] = 0.0
    picks = []
    for opts in options:
        new, pick = np.full(hi + 1, np.inf), np.full(hi + 1, -1)
        for j, option in enumerate(opts):
            s = option.saved // unit
            if s > hi:
                continue
            candidate = best[: hi + 1 - s] + option.cost
            better = candidate < new[s:]
            new[s:][better] = candidate[better]
            pick[s:][better] = j
        best = new
        picks.append(pick)
    if not np.isfinite(best[lo:]).any():
        raise UserError(f"cannot remove {target:.0%} of the parameters with these layers' options; lower --target")
    b = lo + int(np.argmin(best[lo:]))
    chosen = []
    for opts, pick in zip(reversed(options), reversed(picks), strict=True):
        option = opts[pick[b]]
        chosen.append(option)
        b -= option.saved // unit
    plan = merge([o.plan for o in chosen])
    return plan, sum(o.saved for o in chosen), sum(o.cost for o in chosen)
