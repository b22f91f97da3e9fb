"""Corpus BLEU (Papineni et al. 2002): how many of the output's n-grams (n = 1..4) appear in the references.

    BLEU = BP * exp(sum_n 1/4 * log p_n),   p_n = sum clipped n-gram matches / sum output n-grams,
    BP = 1 if c > r else exp(1 - r / c)     (c: output length, r: closest reference length, summed over the corpus)

Counts are clipped: an output n-gram counts at most as often as it appears in any one reference. Sums run over
the whole corpus before dividing, as in the paper (not an average of sentence scores).
"""

from __future__ import annotations

import math
from collections import Counter


def ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(hypotheses: list[list[str]], references: list[list[list[str]]], max_n: int = 4) -> float:
    """BLEU in [0, 1] of tokenised outputs against one or more tokenised references each."""
    matches, totals = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hyp, refs in zip(hypotheses, references, strict=True):
        hyp_len += len(hyp)
        ref_len += min((len(r) for r in refs), key=lambda r: (abs(r - len(hyp)), r))  # closest, shorter on ties
        for n in range(1, max_n + 1):
            counts = ngrams(hyp, n)
            most = Counter()
            for ref in refs:
                most |= ngrams(ref, n)  # element-wise max over references
            matches[n - 1] += sum(min(c, most[g]) for g, c in counts.items())
            totals[n - 1] += max(0, len(hyp) - n + 1)
    if min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_n
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(log_precision)
