"""LoRAs applied to a loaded model: at runtime scales, several at once, merged into the weights and back.

Runtime: a forward hook on each adapted layer adds the adapters' outputs to the layer's,

    y = W x + sum_i scale_i * (alpha_i / r_i) * B_i (A_i x)

(what diffusers/PEFT computes), so scales change without touching a weight and module names (hence state
dicts and fingerprints) stay those of the checkpoint. Merged: W' = W + sum_i scale_i * (alpha_i / r_i) B_i A_i
is computed once in float32, which saves the extra matmuls at every call; the original tensors are kept,
so `unmerge` restores them bit for bit (no subtraction, which would leave rounding behind).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from sd.errors import UserError
from sd.loading.checkpoint_types import Checkpoint
from sd.lora.adapter import Lora
from sd.lora.names import adaptable_modules


class LoraStack:
    """The LoRAs on one checkpoint, in the order added, each with its scale."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self.modules = adaptable_modules(checkpoint)
        self.adapters: dict[str, tuple[Lora, float]] = {}  # name -> (lora, scale)
        self._hooks: dict[str, RemovableHandle] = {}  # qualified module name -> its hook
        self._originals: dict[str, torch.Tensor] | None = None  # the unmerged weights, while merged

    @property
    def merged(self) -> bool:
        return self._originals is not None

    def _require_unmerged(self, what: str) -> None:
        if self.merged:
            raise UserError(f"cannot {what} while the LoRAs are merged; unmerge() first")

    def add(self, lora: Lora, scale: float = 1.0, name: str | None = None) -> str:
        """Apply `lora` at `scale` on top of those already added; returns its name in the stack."""
        self._require_unmerged("add a LoRA")
        name = name or lora.name
        if name in self.adapters:
            raise UserError(f"a LoRA named {name!r} is already applied; pass another name")
        self.adapters[name] = (lora, float(scale))
        for target in lora.layers:
            if target not in self._hooks:
                self._hooks[target] = self.modules[target].register_forward_hook(self._hook(target))
        return name

    def set_scale(self, name: str, scale: float) -> None:
        self._require_unmerged("change a scale")
        self.adapters[self._known(name)] = (self.adapters[name][0], float(scale))

    def remove(self, name: str) -> None:
        self._require_unmerged("remove a LoRA")
        del self.adapters[self._known(name)]
        used = {t for lora, _ in self.adapters.values() for t in lora.layers}
        for target in [t for t in self._hooks if t not in used]:
            self._hooks.pop(target).remove()

    def clear(self) -> None:
        """Unmerge if needed and take every LoRA off: the model is the checkpoint again, bit for bit."""
        if self.merged:
            self.unmerge()
        for name in list(self.adapters):
            self.remove(name)

    def _known(self, name: str) -> str:
        if name not in self.adapters:
            raise UserError(f"no LoRA named {name!r} is applied (applied: {', '.join(self.adapters) or 'none'})")
        return name

    def _hook(self, target: str):
        def add_adapters(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
            if self.merged:
                return output
            for lora, scale in self.adapters.values():
                layer = lora.layers.get(target)
                if layer is not None and scale != 0.0:
                    output = output + layer.forward(module, args[0]) * (scale * layer.factor)  # as PEFT orders it
            return output

        return add_adapters

    @torch.no_grad()
    def merge(self) -> None:
        """Fold every applied LoRA into the weights: W' = W + sum_i scale_i * alpha_i / r_i * B_i A_i."""
        if self.merged:
            return
        originals = {}
        for target in self._hooks:
            module = self.modules[target]
            weight = module.weight.data
            delta = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
            for lora, scale in self.adapters.values():
                layer = lora.layers.get(target)
                if layer is not None:
                    delta += layer.delta_weight().to(weight.device) * (scale * layer.factor)
            originals[target] = weight
            module.weight.data = (weight.float() + delta).to(weight.dtype)  # a new tensor; `weight` is kept
        self._originals = originals

    @torch.no_grad()
    def unmerge(self) -> None:
        """Put the original weight tensors back (the same tensors, so the same bits)."""
        if self._originals is None:
            return
        for target, weight in self._originals.items():
            module = self.modules[target]
            module.weight.data = weight.to(module.weight.device)
        self._originals = None


@contextmanager
def applied_loras(checkpoint: Checkpoint, loras: list[tuple[Lora, float]], merge: bool = True) -> Iterator[LoraStack]:
    """`checkpoint` with `loras` applied (merged by default) inside the block, and exactly itself after it."""
    stack = LoraStack(checkpoint)
    try:
        for i, (lora, scale) in enumerate(loras):
            stack.add(lora, scale, name=f"{i}:{lora.name}")  # the same file twice is two adapters
        if merge:
            stack.merge()
        yield stack
    finally:
        stack.clear()
