"""Which layers a LoRA can adapt, and every name other files give them.

Our module names mirror SD's original checkpoints (`input_blocks.1.1.transformer_blocks.0.attn1.to_q`) and
transformers' CLIP (`text_model.encoder.layers.0.self_attn.q_proj`). LoRA files name the same layers:

    diffusers/PEFT  unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q   (diffusers' UNet names)
                    text_encoder.text_model.encoder.layers.0.self_attn.q_proj         (or without text_model.)
    kohya           lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q   (diffusers' names)
                    lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q          (original names)
                    lora_te_text_model_encoder_layers_0_self_attn_q_proj

The aliases are generated from the loaded model and the same original <-> diffusers rename rules the
checkpoint loader uses (sd/loading/diffusers_unet.py), so there is no key table and any UNet config works.
"""

from __future__ import annotations

from torch import nn

from sd.loading.checkpoint_types import Checkpoint
from sd.loading.diffusers_unet import unet_prefix_pairs
from sd.loading.rename import rename_prefixes

COMPONENTS = ("unet", "text_encoder")
KOHYA_PREFIXES = {"unet": "lora_unet_", "text_encoder": "lora_te_"}


def adaptable_modules(checkpoint: Checkpoint) -> dict[str, nn.Module]:
    """Every linear layer and convolution of the UNet and text encoder, by qualified name ("unet.conv_in")."""
    return {
        f"{component}.{name}": module
        for component in COMPONENTS
        for name, module in getattr(checkpoint, component).named_modules()
        if isinstance(module, nn.Linear | nn.Conv2d)
    }


def diffusers_unet_names(checkpoint: Checkpoint, names: list[str]) -> list[str]:
    """diffusers' names of our UNet modules, by the loader's prefix rules (which rename `MODULE.weight` keys)."""
    renamed = rename_prefixes({f"{n}.weight": None for n in names}, unet_prefix_pairs(checkpoint.unet.config))
    return [key.removesuffix(".weight") for key in renamed]


def module_aliases(checkpoint: Checkpoint) -> dict[str, str]:
    """Every name a LoRA file may give an adaptable layer -> our qualified name."""
    aliases: dict[str, str] = {}
    for component in COMPONENTS:
        names = [q.split(".", 1)[1] for q in adaptable_modules(checkpoint) if q.startswith(f"{component}.")]
        if component == "unet":
            others = diffusers_unet_names(checkpoint, names)
        else:  # transformers >= 5 keeps the text model's layers without the `text_model.` wrapper
            others = [n.removeprefix("text_model.") for n in names]
        kohya = KOHYA_PREFIXES[component]
        for ours, other in zip(names, others, strict=True):
            target = f"{component}.{ours}"
            for alias in (ours, other):
                aliases[f"{component}.{alias}"] = target
                aliases[kohya + alias.replace(".", "_")] = target
    return aliases


def diffusers_names(checkpoint: Checkpoint, qualified: list[str]) -> dict[str, str]:
    """Our qualified names -> the names diffusers' LoRA files give them: what `write_diffusers_lora` needs.

    The UNet's by diffusers' layout (`unet.down_blocks...`); the text encoder's as diffusers 0.42 writes
    them with transformers >= 5, whose CLIPTextModel has no `text_model.` level (`text_encoder.encoder...`):
    a `text_encoder.text_model...` file no longer loads there. Both are read (module_aliases)."""
    unet = [q.removeprefix("unet.") for q in qualified if q.startswith("unet.")]
    renamed = dict(zip(unet, diffusers_unet_names(checkpoint, unet), strict=True))
    return {
        q: f"unet.{renamed[q[5:]]}" if q.startswith("unet.") else q.replace("text_encoder.text_model.", "text_encoder.")
        for q in qualified
    }
