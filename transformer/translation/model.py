"""The encoder-decoder Transformer of "Attention Is All You Need" (Vaswani et al. 2017), small.

    source ids (B, S) -> encoder -> memory (B, S, d)
    target ids so far (B, T) + memory -> decoder -> next-token logits (B, T, V)

Post-LayerNorm residual blocks as in the paper: x = LN(x + Dropout(sublayer(x))). The encoder's
self-attention ignores padded source positions; the decoder's self-attention is also causal (position i sees
targets 0..i only, so training on whole sentences teaches next-token prediction without peeking); its
cross-attention lets every target position look at all of the (unpadded) source. The attention is the
project's one `multi_head_attention`, shared with CLIP's text encoder and the UNet's cross-attention; the
feed-forward block is CLIP's two-layer MLP with the paper's ReLU; the sinusoidal positions are the UNet's
timestep embedding applied to positions (the same formula: sin and cos at geometric frequencies, here in two
halves instead of interleaved, which is a fixed reordering of the channels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from transformer.attention import multi_head_attention
from transformer.feed_forward import CLIPMLP
from transformer.translation.attention_maps import attention_weights
from transformer.translation.vocab import PAD
from unet.timestep import timestep_embedding


@dataclass(frozen=True)
class TranslationConfig:
    src_vocab: int
    tgt_vocab: int
    d_model: int = 128  # the paper's base model: 512
    heads: int = 4  # 8
    d_ff: int = 256  # 2048
    encoder_layers: int = 2  # 6
    decoder_layers: int = 2  # 6
    dropout: float = 0.1


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """PE(pos) = [cos(pos * w_i), sin(pos * w_i)], w_i = 10000^(-i / (dim/2)): (length, dim)."""
    return timestep_embedding(torch.arange(length), dim)


class MultiHeadAttention(nn.Module):
    """Projections around the shared attention: MultiHead(Q, K, V) = Concat(head_1..h) W_O."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.keep_weights = False  # set True to keep the last attention map in `.weights` (for plots)
        self.weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor, causal: bool = False) -> torch.Tensor:
        q = self.q_proj(x)  # (B, N, d)
        k, v = self.k_proj(context), self.v_proj(context)  # (B, M, d) each
        if self.keep_weights:
            self.weights = attention_weights(q, k, self.heads, mask, causal)  # (B, H, N, M)
        return self.out_proj(multi_head_attention(q, k, v, self.heads, causal=causal, mask=mask))  # (B, N, d)


class EncoderLayer(nn.Module):
    def __init__(self, config: TranslationConfig) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(config.d_model, config.heads)
        self.feed_forward = CLIPMLP(config.d_model, config.d_ff, act="relu")  # FFN(x) = max(0, x W1 + b1) W2 + b2
        self.norm1, self.norm2 = nn.LayerNorm(config.d_model), nn.LayerNorm(config.d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.self_attn(x, x, src_mask)))  # (B, S, d)
        return self.norm2(x + self.dropout(self.feed_forward(x)))  # (B, S, d)


class DecoderLayer(nn.Module):
    def __init__(self, config: TranslationConfig) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(config.d_model, config.heads)
        self.cross_attn = MultiHeadAttention(config.d_model, config.heads)
        self.feed_forward = CLIPMLP(config.d_model, config.d_ff, act="relu")
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(config.d_model) for _ in range(3))
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self, y: torch.Tensor, memory: torch.Tensor, tgt_mask: torch.Tensor, src_mask: torch.Tensor
    ) -> torch.Tensor:
        y = self.norm1(y + self.dropout(self.self_attn(y, y, tgt_mask, causal=True)))  # (B, T, d) masked
        y = self.norm2(y + self.dropout(self.cross_attn(y, memory, src_mask)))  # (B, T, d) attends to (B, S, d)
        return self.norm3(y + self.dropout(self.feed_forward(y)))  # (B, T, d)


class Transformer(nn.Module):
    def __init__(self, config: TranslationConfig) -> None:
        super().__init__()
        self.config = config
        self.src_embed = nn.Embedding(config.src_vocab, config.d_model)
        self.tgt_embed = nn.Embedding(config.tgt_vocab, config.d_model)
        self.encoder = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(config) for _ in range(config.decoder_layers))
        self.generator = nn.Linear(config.d_model, config.tgt_vocab)  # to next-token logits
        self.dropout = nn.Dropout(config.dropout)
        for embedding in (self.src_embed, self.tgt_embed):
            # std d^-0.5, so embedding * sqrt(d) has unit scale, like the positions added to it. PyTorch's default
            # (std 1) would make token vectors 11x larger than the positions and drown out word order.
            nn.init.normal_(embedding.weight, std=config.d_model**-0.5)

    def embed(self, embedding: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
        """Token embedding * sqrt(d) + positions (section 3.4), then dropout."""
        d = self.config.d_model
        pe = sinusoidal_positions(ids.shape[1], d).to(ids.device)  # (L, d)
        return self.dropout(embedding(ids) * math.sqrt(d) + pe)  # (B, L) -> (B, L, d)

    @staticmethod
    def padding_mask(ids: torch.Tensor) -> torch.Tensor:
        """True where a key may be attended: (B, L) -> (B, 1, 1, L), broadcast over heads and queries."""
        return (ids != PAD)[:, None, None, :]

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(memory (B, S, d), source mask (B, 1, 1, S))."""
        src_mask = self.padding_mask(src)
        x = self.embed(self.src_embed, src)  # (B, S) -> (B, S, d)
        for layer in self.encoder:
            x = layer(x, src_mask)  # (B, S, d)
        return x, src_mask

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) for the token after each of `tgt`'s positions."""
        y = self.embed(self.tgt_embed, tgt)  # (B, T) -> (B, T, d)
        tgt_mask = self.padding_mask(tgt)
        for layer in self.decoder:
            y = layer(y, memory, tgt_mask, src_mask)  # (B, T, d)
        return self.generator(y)  # (B, T, d) -> (B, T, V)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, src_mask = self.encode(src)
        return self.decode(tgt_in, memory, src_mask)  # (B, T, V)

    def keep_attention_weights(self, keep: bool = True) -> None:
        for module in self.modules():
            if isinstance(module, MultiHeadAttention):
                module.keep_weights, module.weights = keep, None
