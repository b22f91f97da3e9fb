"""What to cut from a UNet: whole residual branches and channel groups, by module path.

    drop:   ResBlock            -> its skip path only (identity or the 1x1 skip convolution)
            SpatialTransformer  -> identity (x + 0)
            attn1 / attn2 / ff  -> nothing added to the residual stream (its LayerNorm goes too)
    remove: ResBlock            -> GroupNorm groups of its hidden width (between the two 3x3 convs)
            CrossAttention      -> heads
            FeedForward         -> groups of GEGLU's inner width (FF_GROUPS groups per layer)

Every cut keeps the block's interface (its input and output widths), so the rest of the UNet, its skip
concatenations included, is untouched, and the pruned model computes exactly what the unpruned one does
with the same units masked to zero.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sd.errors import UserError

FF_GROUPS = 32  # a FeedForward's inner width is pruned in 32 equal groups (SD: 5120 / 32 = 160 channels)
PLAN_KEY = "sd_from_scratch.prune_plan"  # safetensors metadata entry of a pruned file


@dataclass(frozen=True)
class PrunePlan:
    drop: tuple[str, ...] = ()
    remove: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def normalized(self) -> PrunePlan:
        """Sorted, without anything inside a dropped module (the drop removes it anyway)."""
        def inside(path: str, drops: set[str]) -> bool:
            return any(path.startswith(d + ".") for d in drops)

        drops = set(self.drop)
        drop = tuple(sorted(d for d in drops if not inside(d, drops)))
        remove = {
            p: tuple(sorted(set(g)))
            for p, g in sorted(self.remove.items())
            if g and p not in drops and not inside(p, drops)
        }
        return PrunePlan(drop, remove)

    def then(self, later: PrunePlan) -> PrunePlan:
        """One plan doing `self` and then `later`, whose group numbers count only the groups `self` kept.

        Pruning a pruned model again (or measuring its sensitivities) renumbers the surviving groups 0, 1, ...;
        a saved file must record the cuts in the unpruned model's numbering, from which it is rebuilt.
        """
        remove = {p: set(g) for p, g in self.remove.items()}
        for path, groups in later.remove.items():
            before = remove.get(path, set())
            survivors = [g for g in range(len(before) + max(groups) + 1) if g not in before]  # renumbered 0, 1, ...
            remove[path] = before | {survivors[i] for i in groups}
        return PrunePlan((*self.drop, *later.drop), {p: tuple(g) for p, g in remove.items()}).normalized()

    def to_json(self) -> str:
        plan = self.normalized()
        return json.dumps({"drop": list(plan.drop), "remove": {p: list(g) for p, g in plan.remove.items()}})

    @staticmethod
    def from_json(text: str, where: str) -> PrunePlan:
        try:
            d = json.loads(text)
            return PrunePlan(tuple(d["drop"]), {p: tuple(int(i) for i in g) for p, g in d["remove"].items()})
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
            raise UserError(f"{where}: not a prune plan ({error}); expected drop: [...], remove: {{...}}") from None

    def summary(self) -> str:
        groups = sum(len(g) for g in self.remove.values())
        return f"{len(self.drop)} modules dropped, {groups} channel groups removed in {len(self.remove)} layers"
