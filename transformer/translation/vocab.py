"""Tokens and vocabularies for the dates task: words, single digits and punctuation in; characters out.

Digits are single tokens, so "1987" is "1 9 8 7" and a year the model never saw is still made of known
tokens; hyphenated words split ("twenty-first" -> "twenty - first") so numbers compose from parts.
"""

from __future__ import annotations

import re

import torch

from transformer.translation import dates

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
_TOKEN = re.compile(r"[a-z]+|\d|[^\sa-z\d]")


def source_tokens(text: str) -> list[str]:
    """ "the 21st of march, 1987" -> ["the", "2", "1", "st", "of", "march", ",", "1", "9", "8", "7"]."""
    return _TOKEN.findall(text.lower())


def target_tokens(text: str) -> list[str]:
    return list(text)  # "1987-03-21" -> ["1", "9", "8", "7", "-", ...]


class Vocabulary:
    def __init__(self, tokens: list[str]) -> None:
        self.itos = [*SPECIALS, *tokens]
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: list[str]) -> list[int]:
        """Ids with </s> at the end (the decoder's input gets <s> in front when training)."""
        return [self.stoi.get(t, UNK) for t in tokens] + [EOS]

    def decode(self, ids: list[int]) -> list[str]:
        """Tokens up to the first </s>, without <s> or padding."""
        out = []
        for i in ids:
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.itos[i])
        return out


def _words() -> list[str]:
    ordinal_parts = [w for n in range(1, 32) for w in source_tokens(dates.ordinal(n))]
    cardinal_parts = [w for n in range(100) for w in source_tokens(dates.cardinal(n))]
    words = [*dates.MONTHS, *(m[:3] for m in dates.MONTHS), *dates.WEEKDAYS, *ordinal_parts, *cardinal_parts,
             "the", "of", "and", "hundred", "thousand", "oh", "st", "nd", "rd", "th"]  # fmt: skip
    return sorted(set(words))


SOURCE = Vocabulary([*_words(), *"0123456789", ",", "/", "-"])
TARGET = Vocabulary([*"0123456789", "-"])


def batch_ids(sequences: list[list[int]]) -> torch.Tensor:
    """Right-pad id lists to one (B, L) tensor."""
    out = torch.full((len(sequences), max(len(s) for s in sequences)), PAD, dtype=torch.long)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = torch.tensor(s)
    return out


def encode_pairs(pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(source ids (B, S), target ids (B, T) ending in </s>), both padded."""
    src = batch_ids([SOURCE.encode(source_tokens(s)) for s, _ in pairs])
    tgt = batch_ids([TARGET.encode(target_tokens(t)) for _, t in pairs])
    return src, tgt
