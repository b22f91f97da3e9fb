"""An SD 2.x single file's text-encoder keys (OpenCLIP's names), built from a transformers CLIPTextModel.

Written out here, by hand and independently of sd/loading/open_clip_text.py, as the inverse of diffusers'
`convert_open_clip_checkpoint` (the test checks that converter maps it back to the transformers model),
so a loader test built on it does not merely agree with itself. ldm's SD 2.x files hold all 24 layers of
OpenCLIP's tower although the last never runs; `unused_layer_seed` appends such a layer, random.
"""

import math

import torch

MODULES = {  # transformers module -> OpenCLIP module, inside one layer
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "self_attn.out_proj": "attn.out_proj",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}


def open_clip_layout(
    hf_state: dict[str, torch.Tensor], unused_layer_seed: int | None = None
) -> dict[str, torch.Tensor]:
    """`text_model.*` (or prefix-less, as transformers >= 5 keeps them in memory) -> OpenCLIP keys."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in hf_state.items():
        key = key.removeprefix("text_model.")
        if key.endswith("position_ids"):
            continue
        if key == "embeddings.token_embedding.weight":
            out["token_embedding.weight"] = value
        elif key == "embeddings.position_embedding.weight":
            out["positional_embedding"] = value  # a bare nn.Parameter in OpenCLIP
        elif key.startswith("final_layer_norm."):
            out["ln_final." + key.rsplit(".", 1)[1]] = value
        else:  # encoder.layers.N.<module>.<weight|bias>
            _, _, layer, *module, param = key.split(".")
            module = ".".join(module)
            if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                qkv.setdefault((layer, param), {})[module[len("self_attn.")]] = value
            else:
                out[f"transformer.resblocks.{layer}.{MODULES[module]}.{param}"] = value
    for (layer, param), parts in qkv.items():  # nn.MultiheadAttention's fused input projection: rows q, k, v
        out[f"transformer.resblocks.{layer}.attn.in_proj_{param}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    width = out["token_embedding.weight"].shape[1]
    out["text_projection"] = torch.randn(width, width // 2)  # CLIP's contrastive head: stored, never used by SD
    out["logit_scale"] = torch.tensor(math.log(100.0))
    if unused_layer_seed is not None:
        gen = torch.Generator().manual_seed(unused_layer_seed)
        layers = len({k.split(".")[2] for k in out if k.startswith("transformer.resblocks.")})
        first = {k: v for k, v in out.items() if k.startswith("transformer.resblocks.0.")}
        for key, value in first.items():
            out[key.replace(".0.", f".{layers}.", 1)] = 0.05 * torch.randn(value.shape, generator=gen)
    return out
