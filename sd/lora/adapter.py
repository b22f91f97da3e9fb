"""A LoRA file fitted onto a loaded model: every layer found by name and checked by shape.

A LoRA made for another model (SDXL, SD 2.x, another UNet config) fails here, before anything runs, with
one line naming the first key that does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sd.errors import UserError
from sd.loading.checkpoint_types import Checkpoint
from sd.lora.formats import LoraFile, read_lora_file
from sd.lora.layer import LoraLayer
from sd.lora.names import adaptable_modules, module_aliases

HINTS = {"lora_te1_": "SDXL", "lora_te2_": "SDXL", "text_encoder_2.": "SDXL", "lora_transformer_": "a DiT model"}


@dataclass
class Lora:
    name: str  # the file's name, for messages and metadata
    layers: dict[str, LoraLayer]  # our qualified module name ("unet.input_blocks.1.1...to_q") -> its adapter


def fit_lora(file: LoraFile, checkpoint: Checkpoint) -> Lora:
    modules = adaptable_modules(checkpoint)
    aliases = module_aliases(checkpoint)
    layers: dict[str, LoraLayer] = {}
    for name, layer in file.layers.items():
        key = file.keys[name]
        target = aliases.get(name)
        if target is None:
            hint = next((f" (it looks like a LoRA for {model})" for p, model in HINTS.items() if p in name), "")
            raise UserError(f"{file.path}: LoRA key {key} matches no layer of {checkpoint.name}{hint}; "
                            "the LoRA was made for another model (first mismatching key)")  # fmt: skip
        module = modules[target]
        fitted = layer.fitted_to(module)
        want_down, want_up = fitted.expected_shapes(module)
        if fitted.down.shape != want_down or fitted.up.shape != want_up:
            raise UserError(f"{file.path}: LoRA key {key} has A {tuple(layer.down.shape)}, B {tuple(layer.up.shape)} "
                            f"but {target} needs A {want_down}, B {want_up}; the LoRA was made for another model "
                            "(first mismatching key)")  # fmt: skip
        if target in layers:
            raise UserError(f"{file.path}: {key} adapts {target} a second time (under another name)")
        layers[target] = fitted
    return Lora(file.path.name, layers)


def load_lora(path: str | Path, checkpoint: Checkpoint) -> Lora:
    """Read a diffusers/PEFT or kohya LoRA file and fit it onto `checkpoint`."""
    return fit_lora(read_lora_file(path), checkpoint)
