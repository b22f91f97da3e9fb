"""Which UNet attention layers attention interpolation captures, and the memory their keys and values take.

A keyframe's capture holds, for every chosen layer, its K and V of the conditional pass (batch row 1):
    self-attention  (attn1): K, V (1, h_l w_l, C_l) at each interpolated step  (K = V, one tensor, with shared K/V)
    cross-attention (attn2): K, V (1, 77, C_l), once: they are projections of the text, the same at every step
so for `keyframes` keyframes, `steps` interpolated steps and e bytes per element:
    bytes = keyframes * e * (steps * sum_self (h_l w_l) C_l n_l  +  sum_cross 77 C_l n_l),   n_l = 1 (shared) or 2.
At SD 1.5, 512x512 (64x64 latents), fp16: 44.1 MiB per keyframe and step (25.0 MiB of it the five 64x64 layers)
and 3.7 MiB of text keys per keyframe; 20 steps at fraction 0.5 interpolate 10, so 0.43 GiB per keyframe.

The shapes are read off the model itself: one forward on the meta device (shapes only, nothing computed) with
every layer's hook recording what it sees, so pruned and mobile UNets are measured as they are built.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import torch
from torch import nn

from sd.bf16_compute import compute_dtype
from sd.errors import UserError
from transformer.attention import CrossAttention
from transformer.clip_tokenizer import CONTEXT_LENGTH
from unet.config import UNetConfig
from unet.model import UNetModel

KINDS = ("self", "cross")


@dataclass(frozen=True)
class AttentionShape:
    name: str  # the module's name in the UNet, e.g. "input_blocks.1.1.transformer_blocks.0.attn1"
    cross: bool  # keys from the text (attn2) rather than from the pixels (attn1)
    factor: int  # the latent's downsampling factor at this layer: 1 (full latent size), 2, 4, 8
    keys: int  # keys per row: h_l * w_l pixels (self-attention) or 77 text positions (cross-attention)
    width: int  # H * D
    shared_kv: bool  # K and V are one tensor

    @property
    def kind(self) -> str:
        return "cross" if self.cross else "self"

    def kv_bytes(self, element_bytes: int) -> int:
        """Bytes of one keyframe's K and V at this layer, for one step."""
        return self.keys * self.width * (1 if self.shared_kv else 2) * element_bytes


def downsampling_factor(height: int, width: int, tokens: int) -> int:
    """The factor 2^l whose level holds `tokens` pixels; each downsampling rounds up (65 -> 33 -> 17)."""
    h, w, factor = height, width, 1
    while h * w > tokens:
        h, w, factor = -(-h // 2), -(-w // 2), factor * 2
    if h * w != tokens:
        raise ValueError(f"{tokens} tokens are no level of a {height}x{width} latent")
    return factor


@torch.no_grad()
def attention_shapes(unet: UNetModel, height: int, width: int) -> list[AttentionShape]:
    """Every CrossAttention of `unet`, in call order, at a `height` x `width` latent (traced on the meta device)."""
    config = unet.config
    tensors = chain(unet.named_parameters(), unet.named_buffers())
    meta = {name: torch.empty_like(t, device="meta") for name, t in tensors}  # the weights' shapes only
    layers = {module: name for name, module in unet.named_modules() if isinstance(module, CrossAttention)}
    shapes: list[AttentionShape] = []

    def record(module: CrossAttention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        factor = downsampling_factor(height, width, q.shape[1])
        shapes.append(AttentionShape(layers[module], module.is_cross, factor, k.shape[1], k.shape[2], k is v))
        return module.attend(q, k, v)

    dtype = compute_dtype(unet)
    x = torch.empty(1, config.in_channels, height, width, device="meta", dtype=dtype)  # (1, 4, h, w)
    context = torch.empty(1, CONTEXT_LENGTH, config.context_dim, device="meta", dtype=dtype)  # (1, 77, C)
    try:
        for module in layers:
            module.hook = record
        torch.func.functional_call(unet, meta, (x, 500, context))  # one shared timestep: no comparison on meta
    finally:
        for module in layers:
            module.hook = None
    return shapes


def config_shapes(config: UNetConfig, height: int, width: int) -> list[AttentionShape]:
    """`attention_shapes` of the UNet `config` describes, built on the meta device (no memory, any size)."""
    with torch.device("meta"):
        unet = UNetModel(config)
    return attention_shapes(unet, height, width)


def capture_bytes(shapes: list[AttentionShape], steps: int, keyframes: int, element_bytes: int) -> int:
    """The formula above over `shapes`: self-attention at each of `steps` steps, cross-attention once."""
    per_step = sum(s.kv_bytes(element_bytes) for s in shapes if not s.cross)
    once = sum(s.kv_bytes(element_bytes) for s in shapes if s.cross)
    return keyframes * (steps * per_step + once)


def config_capture_bytes(
    config: UNetConfig, height: int, width: int, steps: int, keyframes: int = 2, dtype: torch.dtype = torch.float16
) -> int:
    """Bytes captured for `keyframes` keyframes of a UNet `config` at a `height` x `width` latent, over `steps`
    interpolated steps (the first `fraction` of the steps a frame runs), every layer taking part."""
    return capture_bytes(config_shapes(config, height, width), steps, keyframes, dtype.itemsize)


def select_layers(
    shapes: list[AttentionShape],
    kinds: tuple[str, ...] = KINDS,
    factors: tuple[int, ...] | None = None,
    max_bytes: int | None = None,
    steps: int = 1,
    keyframes: int = 2,
    element_bytes: int = 2,
) -> list[AttentionShape]:
    """The layers of `kinds` at downsampling `factors` (None: all); with `max_bytes`, as many of them as fit,
    cheapest first (text keys, then self-attention from the lowest resolution up), in the UNet's order."""
    chosen = [s for s in shapes if s.kind in kinds and (factors is None or s.factor in factors)]
    if not chosen:
        present = sorted({s.factor for s in shapes})
        raise UserError(f"attention interpolation: no {'/'.join(kinds)}-attention layer at factors {factors} "
                        f"(this UNet attends at {present})")  # fmt: skip
    if max_bytes is None:
        return chosen

    def cost(shape: AttentionShape) -> int:
        return capture_bytes([shape], steps, keyframes, element_bytes)

    kept, total = set(), 0
    for shape in sorted(chosen, key=cost):  # stable: equal costs keep the UNet's order
        if total + cost(shape) > max_bytes:
            break
        kept.add(shape.name)
        total += cost(shape)
    if not kept:
        cheapest = min(map(cost, chosen), default=0)
        raise UserError(f"attention interpolation: a budget of {max_bytes} bytes holds no layer (the cheapest "
                        f"needs {cheapest}); raise it, or interpolate fewer steps")  # fmt: skip
    return [s for s in chosen if s.name in kept]


def unet_modules(unet: nn.Module, names: set[str]) -> list[tuple[str, CrossAttention]]:
    """The CrossAttention modules of `unet` named in `names`, in the UNet's order."""
    return [(n, m) for n, m in unet.named_modules() if isinstance(m, CrossAttention) and n in names]
