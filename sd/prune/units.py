"""The prunable units of a UNet: which modules can go whole, and which have channel groups to remove.

A layer is a module that can be dropped (its residual branch removed), and that may also have groups
of channels removable one at a time without changing its interface:

    ResBlock            hidden width in GroupNorm groups (out_layers.0's groups: 32 in SD)
    SpatialTransformer  drop only (proj_in/proj_out set the transformer's width, its interface)
    attn1, attn2        heads
    ff                  FF_GROUPS groups of the GEGLU inner width
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from sd.prune.plan import FF_GROUPS
from transformer.attention import CrossAttention
from transformer.feed_forward import FeedForward
from transformer.spatial_transformer import BasicTransformerBlock, SpatialTransformer
from unet.resblock import ResBlock

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
