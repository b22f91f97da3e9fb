"""Sensitivity analysis: what removing each unit costs in denoising loss on a fixed held-out batch.

Measured (the unit zeroed in place, the loss recomputed; zeroing computes exactly what removal does):
  - every whole layer dropped: each ResBlock's residual branch, each SpatialTransformer, and each of its
    sub-layers (self-attention attn1, cross-attention attn2, feed-forward ff);
  - each layer's curve: its k least important channel groups removed together, for k at 1/8 .. 7/8 of
    its groups (ResBlock: 32 GroupNorm groups; attention: its heads; ff: 32 groups).
Ranked, not measured one by one (that would be ~540 more evaluations): the channel groups within a layer,
by the first-order Taylor estimate of the loss change when the group is zeroed (Molchanov et al. 2019),
    dL_g ~ -sum_{w in g} w * dL/dw,
taken over the weights that read the group (out_layers.3's, to_out.0's or net.2's input columns).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from sd.eval.held_out import HeldOutBatch, denoising_loss
from sd.prune.masking import removed_masks, zeroed
from unet.pruned import Layer, PrunePlan, prunable_layers

CURVE_FRACTIONS = (1 / 8, 2 / 8, 3 / 8, 4 / 8, 5 / 8, 6 / 8, 7 / 8)


@dataclass
class LayerSensitivity:
    layer: Layer
    drop: float  # loss increase when the whole layer is dropped
    group_order: list[int] = field(default_factory=list)  # groups, least important first (Taylor)
    taylor: list[float] = field(default_factory=list)  # estimated loss change of each group, by group index
    curve: list[tuple[int, float]] = field(default_factory=list)  # (k groups removed, measured loss increase)


@dataclass
class Sensitivity:
    base_loss: float
    layers: list[LayerSensitivity]
    batch_size: int

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> Sensitivity:
        layers = [
            LayerSensitivity(Layer(**x["layer"]), x["drop"], x["group_order"], x["taylor"],
                             [tuple(p) for p in x["curve"]])
            for x in d["layers"]
        ]  # fmt: skip
        return Sensitivity(d["base_loss"], layers, d["batch_size"])


def reading_weights(unet: nn.Module, layer: Layer) -> tuple[nn.Parameter, int]:
    """The weight whose input columns read the layer's channel groups, and the columns per group."""
    module = unet.get_submodule(layer.path)
    if layer.kind == "ResBlock":
        weight = module.out_layers[3].weight  # (C_out, H, 3, 3)
    elif layer.kind == "ff":
        weight = module.net[2].weight  # (C, F)
    else:
        weight = module.to_out[0].weight  # (C, heads * dim_head)
    return weight, weight.shape[1] // layer.groups


def taylor_scores(unet: nn.Module, batch: HeldOutBatch, layers: list[Layer], chunk: int = 128) -> dict[str, list]:
    """First-order estimate of each group's loss change when zeroed, -sum(w * grad), per layer."""
    unet.zero_grad(set_to_none=True)
    with torch.enable_grad():
        for i in range(0, len(batch), chunk):
            s = slice(i, i + chunk)
            eps = unet(batch.z_t[s], batch.t[s], batch.context[s])  # (b, 4, 8, 8)
            loss = torch.nn.functional.mse_loss(eps, batch.noise[s], reduction="sum") / batch.noise.numel()
            loss.backward()
    scores = {}
    for layer in layers:
        if layer.groups:
            weight, size = reading_weights(unet, layer)
            per_column = -(weight * weight.grad).transpose(0, 1).reshape(weight.shape[1], -1).sum(1)  # (columns,)
            scores[layer.path] = per_column.view(layer.groups, size).sum(1).tolist()
    unet.zero_grad(set_to_none=True)
    return scores


def curve_points(groups: int) -> list[int]:
    return sorted({round(groups * f) for f in CURVE_FRACTIONS} - {0, groups})


def measure(unet: nn.Module, batch: HeldOutBatch, plan: PrunePlan, base: float) -> float:
    with zeroed(unet, removed_masks(unet, plan)):
        return denoising_loss(unet, batch) - base


def run_sensitivity(unet: nn.Module, batch: HeldOutBatch, progress: bool = True) -> Sensitivity:
    unet = unet.eval().requires_grad_(True)
    layers = prunable_layers(unet)
    base = denoising_loss(unet, batch)
    taylor = taylor_scores(unet, batch, layers)
    unet.requires_grad_(False)
    total = len(layers) + sum(len(curve_points(layer.groups)) for layer in layers if layer.groups)
    results = []
    with tqdm(total=total, desc="sensitivity", disable=not progress) as bar:
        for layer in layers:
            entry = LayerSensitivity(layer, measure(unet, batch, PrunePlan(drop=(layer.path,)), base))
            bar.update()
            if layer.groups:
                entry.taylor = taylor[layer.path]
                entry.group_order = sorted(range(layer.groups), key=lambda g: entry.taylor[g])
                for k in curve_points(layer.groups):
                    plan = PrunePlan(remove={layer.path: tuple(entry.group_order[:k])})
                    entry.curve.append((k, measure(unet, batch, plan, base)))
                    bar.update()
            results.append(entry)
    return Sensitivity(base, results, len(batch))
