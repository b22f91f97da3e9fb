"""Turning the decoder's next-token distributions into a sentence: greedy search and beam search.

Greedy takes the most likely token at every step. Beam search (as in the paper, beam 4) keeps the `beam`
best partial translations by total log-probability, extends each by every token, keeps the best `beam`
again, and sets aside those that ended with </s>; finished ones are ranked by log-probability divided by a
length penalty ((5 + |y|) / 6) ** alpha (Wu et al. 2016), so longer sentences are not punished merely for
having more factors. With beam 1 it makes exactly greedy's choices.
"""

from __future__ import annotations

import torch

from transformer.translation.model import Transformer
from transformer.translation.vocab import BOS, EOS, PAD


@torch.no_grad()
def greedy_decode(model: Transformer, src: torch.Tensor, max_len: int = 16) -> torch.Tensor:
    """(B, S) source ids -> (B, <= max_len) output ids, each row ending in </s> then padding."""
    memory, src_mask = model.encode(src)  # (B, S, d)
    ys = torch.full((len(src), 1), BOS, dtype=torch.long)  # (B, 1)
    done = torch.zeros(len(src), dtype=torch.bool)
    for _ in range(max_len):
        logits = model.decode(ys, memory, src_mask)[:, -1]  # (B, t, V) -> (B, V) for the next position
        nxt = logits.argmax(-1).masked_fill(done, PAD)  # (B,)
        ys = torch.cat([ys, nxt[:, None]], dim=1)  # (B, t + 1)
        done |= nxt == EOS
        if done.all():
            break
    return ys[:, 1:]


def length_penalty(length: int, alpha: float) -> float:
    return ((5 + length) / 6) ** alpha


@torch.no_grad()
def beam_search(model: Transformer, src: torch.Tensor, beam: int = 4, max_len: int = 16, alpha: float = 0.6) -> list:
    """One sentence: (1, S) source ids -> the best output ids (ending in </s>, or cut at max_len)."""
    memory, src_mask = model.encode(src)  # (1, S, d)
    alive = torch.full((1, 1), BOS, dtype=torch.long)  # (k, t) partial outputs
    scores = torch.zeros(1)  # (k,) their log-probabilities
    finished: list[tuple[float, list[int]]] = []
    for _ in range(max_len):
        k = len(alive)
        logp = model.decode(alive, memory.expand(k, -1, -1), src_mask.expand(k, -1, -1, -1))[:, -1]  # (k, V)
        total = (scores[:, None] + logp.log_softmax(-1)).flatten()  # (k * V,) every one-token extension
        top, index = total.topk(min(2 * beam, len(total)))  # enough that `beam` of them do not end here
        vocab = logp.shape[-1]
        next_alive, next_scores = [], []
        for score, i in zip(top.tolist(), index.tolist(), strict=True):
            row, token = divmod(i, vocab)
            seq = [*alive[row].tolist(), token]
            if token == EOS:
                finished.append((score / length_penalty(len(seq) - 1, alpha), seq[1:]))
            else:
                next_alive.append(seq)
                next_scores.append(score)
            if len(next_alive) == beam:
                break
        if len(finished) >= beam or not next_alive:
            break
        alive, scores = torch.tensor(next_alive), torch.tensor(next_scores)
    else:  # max_len reached: the unfinished ones compete too
        ends = zip(scores.tolist(), alive.tolist(), strict=True)
        finished += [(s / length_penalty(len(a) - 1, alpha), a[1:]) for s, a in ends]
    return max(finished, key=lambda f: f[0])[1]
