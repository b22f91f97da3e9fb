"""`--lora FILE[:SCALE]` on the command line: which LoRA file, at what scale (default 1)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from sd.errors import UserError
from sd.loading.checkpoint_types import Checkpoint
from sd.lora.adapter import Lora, load_lora


@dataclass(frozen=True)
class LoraSpec:
    path: str
    scale: float = 1.0


def parse_lora_spec(text: str) -> LoraSpec:
    """'style.safetensors:0.8' -> LoraSpec('style.safetensors', 0.8); a path without ':SCALE' gets scale 1.
    Only a number after the last ':' is a scale, so a path that contains ':' still works."""
    path, scale = text, 1.0
    head, sep, tail = text.rpartition(":")
    if sep:
        with contextlib.suppress(ValueError):  # not a number: the ':' is part of the path
            path, scale = head, float(tail)
    if not Path(path).is_file():
        raise UserError(f"--lora {text}: no such file {path} (give FILE or FILE:SCALE, e.g. style.safetensors:0.8)")
    return LoraSpec(path, scale)


def load_specs(specs: list[LoraSpec], checkpoint: Checkpoint) -> list[tuple[Lora, float]]:
    """Each LoRA file read and fitted onto `checkpoint`, with its scale (for `applied_loras`)."""
    return [(load_lora(spec.path, checkpoint), spec.scale) for spec in specs]


def describe(specs: list[LoraSpec]) -> str:
    """'style.safetensors:0.8, other.safetensors:1' for image metadata and messages."""
    return ", ".join(f"{Path(spec.path).name}:{spec.scale:g}" for spec in specs)
