"""Random LoRAs for a checkpoint, written in every layout the loader reads (for the tests)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from sd.loading.checkpoint_types import Checkpoint
from sd.lora.formats import write_diffusers_lora
from sd.lora.layer import LoraLayer
from sd.lora.names import adaptable_modules, diffusers_names, diffusers_unet_names

ATTENTION = ("to_q", "to_k", "to_v", "to_out.0", "q_proj", "k_proj", "v_proj", "out_proj")
# What LCM-LoRA (latent-consistency/lcm-lora-sdv1-5) adapts, in our names: attention, the spatial transformers'
# proj_in/proj_out, feed-forward, ResBlock conv1 / conv2 / conv_shortcut / time_emb_proj, down/up-sampler convs.
LCM_LORA = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
            "in_layers.2", "out_layers.3", "skip_connection", "emb_layers.1", ".op", ".conv")  # fmt: skip


def random_lora(
    checkpoint: Checkpoint, seed: int = 0, rank: int = 4, alpha: float = 2.0, size: float = 0.3, kinds=ATTENTION
) -> dict[str, LoraLayer]:
    """A LoRA on every layer whose name ends in one of `kinds` (our qualified names), with B != 0 so it acts."""
    gen = torch.Generator().manual_seed(seed)
    layers = {}
    for name, module in adaptable_modules(checkpoint).items():
        if not name.endswith(kinds):
            continue
        weight = module.weight
        kernel = tuple(weight.shape[2:])
        down = torch.randn(rank, weight.shape[1], *kernel, generator=gen) * size / weight.shape[1] ** 0.5
        up = torch.randn(weight.shape[0], rank, *([1] * len(kernel)), generator=gen) * size
        layers[name] = LoraLayer(down, up, alpha)
    return layers


def write_diffusers(checkpoint: Checkpoint, layers: dict[str, LoraLayer], path: Path) -> Path:
    names = diffusers_names(checkpoint, list(layers))
    write_diffusers_lora({names[q]: layer for q, layer in layers.items()}, path)
    return path


def write_kohya(
    checkpoint: Checkpoint, layers: dict[str, LoraLayer], path: Path, unet_names: str = "diffusers", alpha: bool = True
) -> Path:
    """kohya's layout; the UNet's modules named as diffusers names them (most files) or as the original
    checkpoint does (`unet_names="original"`). `alpha=False` leaves the `.alpha` entries out (readers take r)."""
    unet = [q.removeprefix("unet.") for q in layers if q.startswith("unet.")]
    other = dict(zip(unet, diffusers_unet_names(checkpoint, unet) if unet_names == "diffusers" else unet, strict=True))
    tensors = {}
    for q, layer in layers.items():
        component, name = q.split(".", 1)
        module = other[name] if component == "unet" else name
        key = ("lora_unet_" if component == "unet" else "lora_te_") + module.replace(".", "_")
        tensors[f"{key}.lora_down.weight"] = layer.down.contiguous()
        tensors[f"{key}.lora_up.weight"] = layer.up.contiguous()
        if alpha:
            tensors[f"{key}.alpha"] = torch.tensor(layer.alpha)
    save_file(tensors, path)
    return path
