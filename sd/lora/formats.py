"""LoRA files in the two common layouts -> one internal form (module name -> LoraLayer), and back.

    diffusers/PEFT  {MODULE}.lora_A.weight (A, r x in), {MODULE}.lora_B.weight (B, out x r); alpha in the
                    safetensors metadata `lora_adapter_metadata` ({"unet.r": 4, "unet.lora_alpha": 8, ...}),
                    or {MODULE}.alpha, else alpha = r. Older diffusers files: {MODULE}.lora.down.weight,
                    ...attn1.processor.to_q_lora.down.weight, ...q_proj.lora_linear_layer.down.weight.
    kohya (sd-scripts, A1111)  {lora_unet_...|lora_te_...}.lora_down.weight, .lora_up.weight, .alpha

Module names stay as the file gives them here; names.py and adapter.py map them onto our layers.
LoRA's relatives (LoHa, LoKr, DoRA, a bias on B, a full weight difference) are refused by name.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from sd.atomic_output import atomic_output
from sd.errors import UserError
from sd.loading.read import read_weights
from sd.lora.layer import LoraLayer

# key suffix -> which tensor of a LoRA layer it holds
SUFFIXES = {
    ".lora_A.weight": "down", ".lora_B.weight": "up",  # PEFT (diffusers >= 0.24)
    ".lora.down.weight": "down", ".lora.up.weight": "up",  # older diffusers
    "_lora.down.weight": "down", "_lora.up.weight": "up",  # diffusers' attention processors (processor.to_q_lora)
    ".lora_linear_layer.down.weight": "down", ".lora_linear_layer.up.weight": "up",  # its text encoder
    ".lora_down.weight": "down", ".lora_up.weight": "up",  # kohya
    ".alpha": "alpha",
}  # fmt: skip
UNSUPPORTED = {  # a pattern found in a key -> the adapter kind it belongs to
    r"hada_": "LoHa", r"lokr_": "LoKr", r"dora_scale|lora_magnitude_vector": "DoRA",
    r"lora_mid": "LoCon with a CP-decomposed middle", r"lora_B\.bias": "a LoRA with a bias on B",
    r"\.diff(_b)?$": "a full weight difference",
}  # fmt: skip
METADATA_KEY = "lora_adapter_metadata"  # where diffusers' save_lora_weights keeps each component's LoraConfig


@dataclass
class LoraFile:
    path: Path
    format: str  # "kohya" or "diffusers"
    layers: dict[str, LoraLayer]  # the file's module name -> its layer, in the file's key order
    keys: dict[str, str]  # the file's module name -> its first key, for error messages


def _split(key: str) -> tuple[str, str] | None:
    """(module name, role) of a key; the attention-processor layout's `attn1.processor.to_out` is `attn1.to_out.0`."""
    for suffix, role in SUFFIXES.items():
        if key.endswith(suffix):
            module = key.removesuffix(suffix)
            if ".processor." in module:
                module = module.replace(".processor.", ".") + (".0" if module.endswith("to_out") else "")
            return module, role
    return None


def _metadata_alpha(config: dict, component: str, name: str, rank: int) -> float:
    """alpha of one module from diffusers' per-component LoraConfig metadata, matched as PEFT matches
    `alpha_pattern` keys (a key names the module or a dotted suffix of it)."""
    prefix = f"{component}."
    patterns = config.get(prefix + "alpha_pattern") or {}
    for pattern, alpha in patterns.items():
        if re.match(rf"(.*\.)?({pattern})$", name):
            return float(alpha)
    return float(config.get(prefix + "lora_alpha", rank))


def read_lora_file(path: str | Path) -> LoraFile:
    """Read a LoRA file of either layout; UserError for anything that is not a plain LoRA."""
    path = Path(path)
    tensors, metadata = read_weights(path)
    parts: dict[str, dict[str, torch.Tensor]] = {}
    keys: dict[str, str] = {}
    for key in tensors:
        kind = next((name for pattern, name in UNSUPPORTED.items() if re.search(pattern, key)), None)
        if kind is not None:
            raise UserError(f"{path}: key {key} belongs to {kind}, which is not supported; only plain LoRA "
                            "(lora_A/lora_B or lora_down/lora_up) files load")  # fmt: skip
        split = _split(key)
        if split is None:
            raise UserError(f"{path}: key {key} is not a LoRA weight (expected NAME.lora_A.weight, "
                            "NAME.lora_down.weight, NAME.alpha, ...); is this a LoRA file?")  # fmt: skip
        module, role = split
        parts.setdefault(module, {})[role] = tensors[key]
        keys.setdefault(module, key)
    if not parts:
        raise UserError(f"{path}: no tensors inside; not a LoRA file")
    config = json.loads(metadata.get(METADATA_KEY) or "{}")
    kohya = any(name.startswith("lora_") for name in parts)
    layers = {}
    for module, found in parts.items():
        missing = [role for role in ("down", "up") if role not in found]
        if missing:
            raise UserError(f"{path}: {keys[module]} has no matching {missing[0]} weight; the file is incomplete")
        down, up = found["down"], found["up"]
        if down.dim() not in (2, 4) or up.dim() != down.dim() or up.shape[1] != down.shape[0]:
            raise UserError(f"{path}: {keys[module]}: A {tuple(down.shape)} and B {tuple(up.shape)} do not "
                            "multiply (B must be (out, r), A (r, in))")  # fmt: skip
        if "alpha" in found:
            alpha = float(found["alpha"].float())
        elif not kohya and "." in module:
            component, name = module.split(".", 1)
            alpha = _metadata_alpha(config, component, name, down.shape[0])
        else:
            alpha = float(down.shape[0])  # no alpha stored: alpha = r, a factor of 1
        layers[module] = LoraLayer(down, up, alpha)
    return LoraFile(path, "kohya" if kohya else "diffusers", layers, keys)


def _component_config(names_and_layers: list[tuple[str, LoraLayer]]) -> dict:
    """diffusers' per-component LoraConfig: the commonest rank and alpha, exceptions by module name."""
    rank = Counter(layer.rank for _, layer in names_and_layers).most_common(1)[0][0]
    alpha = Counter(layer.alpha for _, layer in names_and_layers).most_common(1)[0][0]
    return {
        "r": rank,
        "lora_alpha": alpha,
        "rank_pattern": {name: layer.rank for name, layer in names_and_layers if layer.rank != rank},
        "alpha_pattern": {name: layer.alpha for name, layer in names_and_layers if layer.alpha != alpha},
        "target_modules": sorted(name for name, _ in names_and_layers),
    }


def write_diffusers_lora(layers: dict[str, LoraLayer], path: str | Path, overwrite: bool = False) -> None:
    """Write `layers` (keyed `unet.<diffusers name>` / `text_encoder.<name>`) as diffusers' save_lora_weights
    does: PEFT keys in a safetensors file, each component's rank and alpha in `lora_adapter_metadata`, so
    diffusers' `load_lora_weights` reads it."""
    tensors, per_component = {}, {}
    for name, layer in layers.items():
        tensors[f"{name}.lora_A.weight"] = layer.down.detach().cpu().contiguous()
        tensors[f"{name}.lora_B.weight"] = layer.up.detach().cpu().contiguous()
        component, module = name.split(".", 1)
        per_component.setdefault(component, []).append((module, layer))
    config = {}
    for component, entries in per_component.items():
        config |= {f"{component}.{k}": v for k, v in _component_config(entries).items()}
    metadata = {"format": "pt", METADATA_KEY: json.dumps(config, indent=2, sort_keys=True)}
    with atomic_output(Path(path), overwrite) as tmp:
        save_file(tensors, tmp, metadata=metadata)
