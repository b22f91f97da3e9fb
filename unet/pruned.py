"""A pruned UNet: whole residual branches and channel groups cut out, and the smaller model rebuilt.

    drop:   ResBlock            -> its skip path only (identity or the 1x1 skip convolution)
            SpatialTransformer  -> identity (x + 0)
            attn1 / attn2 / ff  -> nothing added to the residual stream (its LayerNorm goes too)
    remove: ResBlock            -> GroupNorm groups of its hidden width (between the two 3x3 convs)
            CrossAttention      -> heads
            FeedForward         -> groups of GEGLU's inner width (FF_GROUPS groups per layer)

Every cut keeps the block's interface (its input and output widths), so the rest of the UNet, its skip
concatenations included, is untouched, and the pruned model computes exactly what the unpruned one does
with the same units masked to zero. Removing channel group g of a layer deletes every weight that only that
group uses:

    ResBlock   hidden channels c of group g: rows c of in_layers.2 (conv) and emb_layers.1, entries c of
               out_layers.0 (GroupNorm(G, H) -> GroupNorm(G - k, H - k H/G): whole groups go, so every
               kept channel is normalised over the same channels as before), columns c of out_layers.3
    head h     rows of to_q, to_k, to_v for its dim_head slice, the same columns of to_out.0
    FF group   rows j and inner + j of GEGLU's net.0.proj (value and gate halves), columns j of net.2

The file reads in that order: the plan (what to cut), the prunable units (what can be cut), what a cut
leaves behind, the surgery. A pruned model records its plan as `unet.prune_plan`; a saved pruned file
keeps it in its metadata and is rebuilt from it with `build_pruned_unet` before a strict load. Choosing
what to cut (sensitivities, allocation, recovery) is the app's: sd/prune/.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch
from torch import nn

from transformer.attention import CrossAttention
from transformer.feed_forward import FeedForward
from transformer.spatial_transformer import BasicTransformerBlock, SpatialTransformer
from unet.config import UNetConfig
from unet.model import UNetModel
from unet.resblock import ResBlock

FF_GROUPS = 32  # a FeedForward's inner width is pruned in 32 equal groups (SD: 5120 / 32 = 160 channels)


@dataclass(frozen=True)
class PrunePlan:
    """What to cut, by module path: `drop` whole layers, `remove` channel groups {path: group numbers}."""

    drop: tuple[str, ...] = ()
    remove: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def normalized(self) -> PrunePlan:
        """Sorted, without anything inside a dropped module (the drop removes it anyway)."""
        def inside(path: str, drops: set[str]) -> bool:
            return any(path.startswith(d + ".") for d in drops)

        drops = set(self.drop)
        drop = tuple(sorted(d for d in drops if not inside(d, drops)))
        remove = {
            p: tuple(sorted(set(g)))
            for p, g in sorted(self.remove.items())
            if g and p not in drops and not inside(p, drops)
        }
        return PrunePlan(drop, remove)

    def then(self, later: PrunePlan) -> PrunePlan:
        """One plan doing `self` and then `later`, whose group numbers count only the groups `self` kept.

        Pruning a pruned model again (or measuring its sensitivities) renumbers the surviving groups 0, 1, ...;
        a saved file must record the cuts in the unpruned model's numbering, from which it is rebuilt.
        """
        remove = {p: set(g) for p, g in self.remove.items()}
        for path, groups in later.remove.items():
            before = remove.get(path, set())
            survivors = [g for g in range(len(before) + max(groups) + 1) if g not in before]  # renumbered 0, 1, ...
            remove[path] = before | {survivors[i] for i in groups}
        return PrunePlan((*self.drop, *later.drop), {p: tuple(g) for p, g in remove.items()}).normalized()

    def to_json(self) -> str:
        plan = self.normalized()
        return json.dumps({"drop": list(plan.drop), "remove": {p: list(g) for p, g in plan.remove.items()}})

    @staticmethod
    def from_json(text: str) -> PrunePlan:
        """The plan `to_json` wrote; ValueError for anything else."""
        try:
            d = json.loads(text)
            return PrunePlan(tuple(d["drop"]), {p: tuple(int(i) for i in g) for p, g in d["remove"].items()})
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"not a prune plan ({error}); expected drop: [...], remove: {{...}}") from None

    def summary(self) -> str:
        groups = sum(len(g) for g in self.remove.values())
        return f"{len(self.drop)} modules dropped, {groups} channel groups removed in {len(self.remove)} layers"


# --------------------------------------------------------------------------------------------- prunable units
# A layer is a module that can be dropped (its residual branch removed), and that may also have groups of
# channels removable one at a time without changing its interface:
#     ResBlock            hidden width in GroupNorm groups (out_layers.0's groups: 32 in SD)
#     SpatialTransformer  drop only (proj_in/proj_out set the transformer's width, its interface)
#     attn1, attn2        heads
#     ff                  FF_GROUPS groups of the GEGLU inner width
SUB_LAYERS = {"attn1": "norm1", "attn2": "norm2", "ff": "norm3"}  # sub-layer -> the LayerNorm before it


@dataclass(frozen=True)
class Layer:
    path: str
    kind: str  # "ResBlock", "SpatialTransformer", "attn1", "attn2" or "ff"
    groups: int  # channel groups removable one by one; 0: the layer can only be dropped whole
    parent: str = ""  # the SpatialTransformer holding a sub-layer


def _resblock_groups(block: ResBlock) -> int:
    """GroupNorm groups of the hidden width, if both 3x3 convs are plain convolutions (else drop only)."""
    plain = isinstance(block.in_layers[2], nn.Conv2d) and isinstance(block.out_layers[3], nn.Conv2d)
    return block.out_layers[0].num_groups if plain else 0


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def prunable_layers(unet: nn.Module) -> list[Layer]:
    """Every layer of `unet` in module order (children of a SpatialTransformer after it)."""
    layers = []
    for path, module in unet.named_modules():
        if isinstance(module, ResBlock):
            layers.append(Layer(path, "ResBlock", _resblock_groups(module)))
        elif isinstance(module, SpatialTransformer):
            layers.append(Layer(path, "SpatialTransformer", 0))
        elif isinstance(module, BasicTransformerBlock):
            parent = path.rsplit(".transformer_blocks.", 1)[0]
            for name in SUB_LAYERS:
                sub = getattr(module, name, None)
                if isinstance(sub, CrossAttention):
                    layers.append(Layer(_join(path, name), name, sub.heads, parent))
                elif isinstance(sub, FeedForward):
                    inner = sub.net[2].in_features
                    layers.append(Layer(_join(path, name), name, FF_GROUPS if inner % FF_GROUPS == 0 else 0, parent))
    return layers


# ------------------------------------------------------------------------------------- what a cut leaves behind
# Modules with no weights (or only the skip convolution). Both keep the checkpoint's key names for what survives:
# a dropped ResBlock still answers to `input_blocks.4.0.skip_connection.weight`, a dropped sub-layer has no keys.
class SkipPath(nn.Module):
    """A ResBlock whose residual branch was pruned: out = skip(x) (identity or its 1x1 conv).

    Not a ResBlock, so TimestepEmbedSequential calls it with x alone (no time embedding is needed).
    """

    def __init__(self, skip_connection: nn.Module) -> None:
        super().__init__()
        self.skip_connection = skip_connection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip_connection(x)  # (B, C_in, H, W) -> (B, C_out, H, W)


class NoResidual(nn.Module):
    """Stands in for a pruned sub-layer f in x + f(norm(x)): it adds nothing, so the block computes x + 0."""

    def forward(self, *args: object) -> float:
        return 0.0


# ----------------------------------------------------------------------------------------------------- surgery
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


def check_plan(unet: nn.Module, plan: PrunePlan) -> None:
    """ValueError, saying which entry, unless every cut of `plan` names a prunable layer of `unet` and leaves it
    at least one channel group."""
    layers = {layer.path: layer for layer in prunable_layers(unet)}
    for path in plan.drop:
        if path not in layers:
            raise ValueError(f"{path!r} is not a prunable layer of this UNet (e.g. {next(iter(layers))!r})")
    for path, groups in plan.remove.items():
        layer = layers.get(path)
        if layer is None or layer.groups == 0:
            raise ValueError(f"{path!r} has no removable channel groups")
        bad = [g for g in groups if not 0 <= g < layer.groups]
        if bad or len(groups) >= layer.groups:
            raise ValueError(f"{path}: groups {list(groups)} must be distinct, in 0..{layer.groups - 1}, "
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


def build_pruned_unet(config: UNetConfig, plan: PrunePlan | None) -> nn.Module:
    """The UNet of `config` with `plan`'s shapes (weights uninitialised on meta: for strict loading)."""
    unet = UNetModel(config)
    return unet if plan is None else apply_plan_(unet, plan)
