"""Surgery: rebuild the pruned layers with smaller tensors and replace dropped modules.

Removing channel group g of a layer deletes every weight that only that group uses, so the rest of the
network computes exactly what it did with the group masked to zero:

    ResBlock   hidden channels c of group g: rows c of in_layers.2 (conv) and emb_layers.1, entries c of
               out_layers.0 (GroupNorm(G, H) -> GroupNorm(G - k, H - k H/G): whole groups go, so every
               kept channel is normalised over the same channels as before), columns c of out_layers.3
    head h     rows of to_q, to_k, to_v for its dim_head slice, the same columns of to_out.0
    FF group   rows j and inner + j of GEGLU's net.0.proj (value and gate halves), columns j of net.2

The pruned model records its plan as `unet.prune_plan`; `save_original` stores it in the file's metadata
and `load_original` rebuilds the same shapes from it before a strict load.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from sd.errors import UserError
from sd.prune.blocks import NoResidual, SkipPath
from sd.prune.plan import FF_GROUPS, PrunePlan
from sd.prune.units import SUB_LAYERS, prunable_layers
from transformer.attention import CrossAttention
from transformer.feed_forward import FeedForward
from transformer.spatial_transformer import SpatialTransformer
from unet.config import UNetConfig
from unet.model import UNetModel
from unet.resblock import ResBlock


def kept(width: int, groups: int, removed: tuple[int, ...]) -> torch.Tensor:
    """Indices of the channels outside the removed groups (each group is width // groups contiguous channels)."""
    size = width // groups
    gone = set(removed)
    return torch.tensor([c for c in range(width) if c // size not in gone], dtype=torch.long)


def _take(t: torch.Tensor, dim: int, index: torch.Tensor | None) -> torch.Tensor:
    return t if index is None else t.index_select(dim, index.to(t.device))


def _adopt(new: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None, like: nn.Module) -> nn.Module:
    """Give a module built on `meta` the sliced tensors as its parameters (no initialisation, no copy twice)."""
    new.weight = nn.Parameter(weight.contiguous(), requires_grad=like.weight.requires_grad)
    if bias is not None:
        new.bias = nn.Parameter(bias.contiguous(), requires_grad=like.bias.requires_grad)
    return new


def sliced_conv(conv: nn.Conv2d, out_keep: torch.Tensor | None = None, in_keep: torch.Tensor | None = None):
    w = _take(_take(conv.weight, 0, out_keep), 1, in_keep)  # (C_out', C_in', k, k)
    b = None if conv.bias is None else _take(conv.bias, 0, out_keep)
    new = nn.Conv2d(w.shape[1], w.shape[0], conv.kernel_size, conv.stride, conv.padding, bias=b is not None,
                    device="meta")  # fmt: skip
    return _adopt(new, w, b, conv)


def sliced_linear(linear: nn.Linear, out_keep: torch.Tensor | None = None, in_keep: torch.Tensor | None = None):
    w = _take(_take(linear.weight, 0, out_keep), 1, in_keep)  # (out', in')
    b = None if linear.bias is None else _take(linear.bias, 0, out_keep)
    return _adopt(nn.Linear(w.shape[1], w.shape[0], bias=b is not None, device="meta"), w, b, linear)


def shrink_resblock_(block: ResBlock, removed: tuple[int, ...]) -> None:
    norm = block.out_layers[0]
    keep = kept(norm.num_channels, norm.num_groups, removed)
    block.in_layers[2] = sliced_conv(block.in_layers[2], out_keep=keep)  # (C_in -> H) -> (C_in -> H')
    block.emb_layers[1] = sliced_linear(block.emb_layers[1], out_keep=keep)  # (E -> H) -> (E -> H')
    new_norm = nn.GroupNorm(norm.num_groups - len(removed), len(keep), norm.eps, device="meta")
    block.out_layers[0] = _adopt(new_norm, _take(norm.weight, 0, keep), _take(norm.bias, 0, keep), norm)
    block.out_layers[3] = sliced_conv(block.out_layers[3], in_keep=keep)  # (H -> C_out) -> (H' -> C_out)


def remove_heads_(attn: CrossAttention, removed: tuple[int, ...]) -> None:
    keep = kept(attn.to_q.out_features, attn.heads, removed)
    for name in ("to_q", "to_k", "to_v", "to_kv"):  # to_kv: a shared key/value projection, where present
        if isinstance(getattr(attn, name, None), nn.Linear):
            setattr(attn, name, sliced_linear(getattr(attn, name), out_keep=keep))  # (C -> H*D) -> (C -> H'*D)
    attn.to_out[0] = sliced_linear(attn.to_out[0], in_keep=keep)  # (H*D -> C) -> (H'*D -> C)
    attn.heads -= len(removed)


def shrink_feed_forward_(ff: FeedForward, removed: tuple[int, ...]) -> None:
    inner = ff.net[2].in_features
    keep = kept(inner, FF_GROUPS, removed)
    both_halves = torch.cat([keep, keep + inner])  # GEGLU's proj stacks the value half, then the gate half
    ff.net[0].proj = sliced_linear(ff.net[0].proj, out_keep=both_halves)  # (C -> 2F) -> (C -> 2F')
    ff.net[2] = sliced_linear(ff.net[2], in_keep=keep)  # (F -> C) -> (F' -> C)


def check_plan(unet: nn.Module, plan: PrunePlan, where: str = "prune plan") -> None:
    layers = {layer.path: layer for layer in prunable_layers(unet)}
    for path in plan.drop:
        if path not in layers:
            raise UserError(f"{where}: {path!r} is not a prunable layer of this UNet (e.g. {next(iter(layers))!r})")
    for path, groups in plan.remove.items():
        layer = layers.get(path)
        if layer is None or layer.groups == 0:
            raise UserError(f"{where}: {path!r} has no removable channel groups")
        bad = [g for g in groups if not 0 <= g < layer.groups]
        if bad or len(groups) >= layer.groups:
            raise UserError(f"{where}: {path}: groups {list(groups)} must be distinct, in 0..{layer.groups - 1}, "
                            "and leave at least one (drop the layer to remove all)")  # fmt: skip


def apply_plan_(unet: nn.Module, plan: PrunePlan) -> nn.Module:
    """Prune `unet` in place (it may live on the meta device: only shapes are needed there)."""
    plan = plan.normalized()
    check_plan(unet, plan)
    for path, removed in plan.remove.items():
        module = unet.get_submodule(path)
        if isinstance(module, ResBlock):
            shrink_resblock_(module, removed)
        elif isinstance(module, CrossAttention):
            remove_heads_(module, removed)
        else:
            shrink_feed_forward_(module, removed)
    for path in plan.drop:
        module = unet.get_submodule(path)
        if isinstance(module, ResBlock):
            unet.set_submodule(path, SkipPath(module.skip_connection))
        elif isinstance(module, SpatialTransformer):
            unet.set_submodule(path, nn.Identity())
        else:  # a transformer sub-layer: x + f(norm(x)) becomes x + 0
            parent, _, name = path.rpartition(".")
            unet.set_submodule(path, NoResidual())
            unet.set_submodule(f"{parent}.{SUB_LAYERS[name]}".lstrip("."), nn.Identity())
    earlier = getattr(unet, "prune_plan", None)  # pruning a pruned model: record both in the original numbering
    unet.prune_plan = plan if earlier is None else earlier.then(plan)
    return unet


def prune_unet(unet: nn.Module, plan: PrunePlan) -> nn.Module:
    """A pruned copy of `unet` (the original is left as it was)."""
    return apply_plan_(copy.deepcopy(unet), plan)


def build_pruned_unet(config: UNetConfig, plan: PrunePlan | None) -> nn.Module:
    """The UNet of `config` with `plan`'s shapes (weights uninitialised on meta: for strict loading)."""
    unet = UNetModel(config)
    return unet if plan is None else apply_plan_(unet, plan)


def skeleton(unet: nn.Module) -> nn.Module:
    """A weightless (meta-device) UNet of the same architecture as `unet`, pruned or not."""
    with torch.device("meta"):
        return build_pruned_unet(unet.config, getattr(unet, "prune_plan", None))


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
