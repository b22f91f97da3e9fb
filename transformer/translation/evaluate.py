"""Exact match and BLEU of a translation model on (English, ISO) pairs, with greedy or beam decoding."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from transformer.translation.bleu import corpus_bleu
from transformer.translation.decoding import beam_search, greedy_decode
from transformer.translation.model import Transformer
from transformer.translation.vocab import SOURCE, TARGET, batch_ids, source_tokens, target_tokens


def translate(model: Transformer, sentences: list[str], beam: int = 1, batch: int = 256) -> list[str]:
    """English dates -> ISO strings; beam 1 decodes greedily in batches, a wider beam one sentence at a time."""
    model.eval()
    ids = [SOURCE.encode(source_tokens(s)) for s in sentences]
    if beam == 1:
        out = [row for i in range(0, len(ids), batch) for row in greedy_decode(model, batch_ids(ids[i : i + batch]))]
        return ["".join(TARGET.decode(row.tolist())) for row in out]
    bar = tqdm(ids, desc=f"beam {beam}", leave=False, disable=len(ids) < 200)
    return ["".join(TARGET.decode(beam_search(model, torch.tensor([i]), beam))) for i in bar]


def score(model: Transformer, pairs: list[tuple[str, str]], beam: int = 1) -> dict[str, float]:
    """{"exact_match": fraction of outputs equal to the reference, "bleu": character-level corpus BLEU-4 x 100}."""
    outputs = translate(model, [s for s, _ in pairs], beam)
    exact = sum(o == t for o, (_, t) in zip(outputs, pairs, strict=True)) / len(pairs)
    bleu = corpus_bleu([target_tokens(o) for o in outputs], [[target_tokens(t)] for _, t in pairs])
    return {"exact_match": exact, "bleu": 100 * bleu}
