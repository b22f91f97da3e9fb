"""The CLIP text encoder of Stable Diffusion (Radford et al. 2021): OpenAI's ViT-L/14 text tower for SD 1.x,
OpenCLIP's ViT-H/14 text tower for SD 2.x (Cherti et al. 2022), two configs of one implementation.

A pre-LayerNorm transformer over 77 token positions with a causal mask, so each token only sees the
ones before it (CLIP was trained that way). SD conditions its UNet on the whole last hidden state
(B, 77, C), not only on the pooled vector. SD 2.x takes it one layer early (the penultimate layer, then
the final LayerNorm), as ldm's `FrozenOpenCLIPEmbedder(layer="penultimate")` does: `skip_last_layers=1`.

Attribute names follow transformers' `CLIPTextModel` (`text_model.encoder.layers.0.self_attn.q_proj`),
which is also how SD 1.x single-file checkpoints store it under `cond_stage_model.transformer.`; SD 2.x
files store OpenCLIP's names, renamed on loading (sd/loading/open_clip_text.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from transformer.attention import multi_head_attention
from transformer.feed_forward import CLIPMLP


@dataclass(frozen=True)
class CLIPTextConfig:
    """Field names as in transformers' CLIPTextConfig, so a diffusers `text_encoder/config.json` maps 1:1."""

    vocab_size: int = 49408
    max_position_embeddings: int = 77
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    layer_norm_eps: float = 1e-5
    hidden_act: str = "quick_gelu"  # OpenAI CLIP's x * sigmoid(1.702 x); OpenCLIP uses exact "gelu"
    eos_token_id: int = 49407
    # Not a transformers field: final layers the model runs without (their weights may still be stored).
    skip_last_layers: int = 0


SD15_TEXT = CLIPTextConfig()
# SD 2.x: the 24-layer OpenCLIP tower as its single files store it; the last layer is never used.
# diffusers' folders drop that layer instead: 23 layers, skip_last_layers=0, the same outputs.
SD21_TEXT = CLIPTextConfig(
    hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, hidden_act="gelu",
    skip_last_layers=1,
)  # fmt: skip


class CLIPAttention(nn.Module):
    """Causal self-attention with CLIP's projection names (`q_proj`, `k_proj`, `v_proj`, `out_proj`)."""

    def __init__(self, config: CLIPTextConfig) -> None:
        super().__init__()
        dim = config.hidden_size
        self.heads = config.num_attention_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)  # 3 x (B, 77, 768)
        out = multi_head_attention(q, k, v, self.heads, causal=True)  # (B, 77, 768), 12 heads of 64
        return self.out_proj(out)  # (B, 77, 768)


class CLIPEncoderLayer(nn.Module):
    """Pre-LN block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, config: CLIPTextConfig) -> None:
        super().__init__()
        self.self_attn = CLIPAttention(config)
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = CLIPMLP(config.hidden_size, config.intermediate_size, config.hidden_act)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))  # (B, 77, 768)
        return x + self.mlp(self.layer_norm2(x))  # (B, 77, 768)


class CLIPEncoder(nn.Module):
    def __init__(self, config: CLIPTextConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CLIPEncoderLayer(config) for _ in range(config.num_hidden_layers))


class CLIPTextEmbeddings(nn.Module):
    """Learned token and absolute position embeddings, added."""

    def __init__(self, config: CLIPTextConfig) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = nn.Embedding(config.max_position_embeddings, config.hidden_size)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)  # (77,)
        return self.token_embedding(input_ids) + self.position_embedding(positions)  # (B, 77) -> (B, 77, 768)


class CLIPTextTransformer(nn.Module):
    def __init__(self, config: CLIPTextConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = CLIPTextEmbeddings(config)
        self.encoder = CLIPEncoder(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, skip_last_layers: int = 0) -> torch.Tensor:
        x = self.embeddings(input_ids)  # (B, 77) -> (B, 77, 768)
        layers = self.encoder.layers
        for layer in layers[: len(layers) - self.config.skip_last_layers - skip_last_layers]:
            x = layer(x)  # (B, 77, 768)
        return self.final_layer_norm(x)  # (B, 77, 768)


class CLIPTextModel(nn.Module):
    """`text_model` wrapper so state-dict keys read `text_model.*`, as in transformers and SD files."""

    def __init__(self, config: CLIPTextConfig = SD15_TEXT) -> None:
        super().__init__()
        self.config = config
        self.text_model = CLIPTextTransformer(config)

    def forward(self, input_ids: torch.Tensor, skip_last_layers: int = 0) -> torch.Tensor:
        """Last hidden state (B, 77, 768), the UNet's cross-attention context.

        `skip_last_layers=1` is the popular "CLIP skip 2": stop one layer early, then the final norm.
        It counts on top of `config.skip_last_layers` (which SD 2.x sets to 1), so 0 is what the model
        was trained with, whichever layout it was loaded from.
        """
        return self.text_model(input_ids, skip_last_layers)

    def pooled(self, input_ids: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """The hidden state at the first end-of-text token: CLIP's sentence embedding, (B, 768)."""
        eos = (input_ids == self.config.eos_token_id).int().argmax(dim=-1)  # (B,) first <|endoftext|>
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), eos]  # (B, 77, 768) -> (B, 768)


# The embedded model's size: the real CLIP vocabulary (so prompts tokenize as for SD), a small, shallow tower.
TINY_TEXT = CLIPTextConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4)
