"""SD 2.x single files store the text encoder under OpenCLIP's names; ours are transformers' (as diffusers stores it).

    cond_stage_model.model.                          text_model.
      token_embedding.weight                           embeddings.token_embedding.weight
      positional_embedding                             embeddings.position_embedding.weight
      transformer.resblocks.N.ln_1, ln_2               encoder.layers.N.layer_norm1, layer_norm2
      transformer.resblocks.N.attn.in_proj_weight      encoder.layers.N.self_attn.{q,k,v}_proj.weight
      transformer.resblocks.N.attn.in_proj_bias        encoder.layers.N.self_attn.{q,k,v}_proj.bias
      transformer.resblocks.N.attn.out_proj            encoder.layers.N.self_attn.out_proj
      transformer.resblocks.N.mlp.c_fc, c_proj         encoder.layers.N.mlp.fc1, fc2
      ln_final                                         final_layer_norm
      text_projection, logit_scale                     not used: CLIP's contrastive head, which SD never calls

OpenCLIP's attention is torch's `nn.MultiheadAttention`, which keeps the three input projections as one
(3C, C) matrix, rows q then k then v; splitting it gives three views, so nothing is copied. Module
renames are generated per layer like the UNet's (no key table), and go through `rename_prefixes`.
"""

from __future__ import annotations

import re

import torch

from sd.loading.rename import rename_prefixes

UNUSED = ("text_projection", "logit_scale")  # skipped on loading, not written back
POSITIONS = ("positional_embedding", "text_model.embeddings.position_embedding.weight")  # a bare parameter
IN_PROJ = re.compile(r"transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)")
FUSED = re.compile(r"text_model\.encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)")
LAYER_PAIRS = [("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("attn.out_proj", "self_attn.out_proj"),
               ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")]  # fmt: skip


def open_clip_prefix_pairs(num_layers: int) -> list[tuple[str, str]]:
    """(OpenCLIP, transformers) module-prefix pairs for a text tower of `num_layers` layers."""
    pairs = [("token_embedding", "text_model.embeddings.token_embedding"), ("ln_final", "text_model.final_layer_norm")]
    for i in range(num_layers):
        pairs += [(f"transformer.resblocks.{i}.{o}", f"text_model.encoder.layers.{i}.{t}") for o, t in LAYER_PAIRS]
    return pairs


def _num_layers(keys, pattern: str) -> int:
    return len({m.group(1) for k in keys if (m := re.match(pattern, k))})


def open_clip_to_transformers(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenCLIP text keys (prefix `cond_stage_model.model.` already stripped) -> our `text_model.*` keys."""
    num_layers = _num_layers(state_dict, r"transformer\.resblocks\.(\d+)\.")
    out: dict[str, torch.Tensor] = {}
    for key, value in rename_prefixes(state_dict, open_clip_prefix_pairs(num_layers)).items():
        if key in UNUSED:
            continue
        if key == POSITIONS[0]:
            out[POSITIONS[1]] = value
        elif m := IN_PROJ.fullmatch(key):
            q, k, v = value.chunk(3)  # (3C, C) -> 3 x (C, C), or (3C,) -> 3 x (C,)
            for name, part in zip("qkv", (q, k, v), strict=True):
                out[f"text_model.encoder.layers.{m.group(1)}.self_attn.{name}_proj.{m.group(2)}"] = part
        else:
            out[key] = value
    return out


def transformers_to_open_clip(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse: our `text_model.*` keys -> OpenCLIP's, q/k/v concatenated back into `in_proj`."""
    num_layers = _num_layers(state_dict, r"text_model\.encoder\.layers\.(\d+)\.")
    out: dict[str, torch.Tensor] = {}
    fused: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in rename_prefixes(state_dict, open_clip_prefix_pairs(num_layers), reverse=True).items():
        if key == POSITIONS[1]:
            out[POSITIONS[0]] = value
        elif m := FUSED.fullmatch(key):
            fused.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = value
        else:
            out[key] = value
    for (layer, kind), qkv in fused.items():
        out[f"transformer.resblocks.{layer}.attn.in_proj_{kind}"] = torch.cat([qkv[n] for n in "qkv"])  # (3C, ...)
    return out
