"""BLEU against published values: NLTK's documented examples (Papineni et al.'s sentences)."""

from __future__ import annotations

import math

import pytest

from transformer.translation.bleu import corpus_bleu

# NLTK's examples, as sentences; their words are the sentences split on spaces.
HYP1 = "It is a guide to action which ensures that the military always obeys the commands of the party"
REF1A = "It is a guide to action that ensures that the military will forever heed Party commands"
REF1B = "It is the guiding principle which guarantees the military forces always being under the command of the Party"
REF1C = "It is the practical guide for the army always to heed the directions of the party"
HYP2 = "he read the book because he was interested in world history"
REF2 = "he was interested in world history because he read the book"
REFS1 = [REF1A.split(), REF1B.split(), REF1C.split()]


def test_sentence_bleu_matches_nltk_documentation() -> None:
    # nltk.translate.bleu_score.sentence_bleu([ref1a, ref1b, ref1c], hyp1) == 0.5045666840058485 (its doctest)
    assert corpus_bleu([HYP1.split()], [REFS1]) == pytest.approx(0.5045666840058485, abs=1e-12)


def test_corpus_bleu_matches_nltk_documentation() -> None:
    # corpus BLEU sums counts over sentences before dividing: 0.5920778868801042 in NLTK's doctest
    refs = [REFS1, [REF2.split()]]
    assert corpus_bleu([HYP1.split(), HYP2.split()], refs) == pytest.approx(0.5920778868801042, abs=1e-12)


def test_identity_zero_and_brevity_penalty() -> None:
    ref = list("1987-03-21")
    assert corpus_bleu([ref], [[ref]]) == 1.0
    assert corpus_bleu([list("xxxxxxxxxx")], [[ref]]) == 0.0  # no matching unigram
    # a correct prefix of 8 of 10 tokens: every n-gram matches, so BLEU is the brevity penalty exp(1 - 10/8)
    assert corpus_bleu([ref[:8]], [[ref]]) == pytest.approx(math.exp(1 - 10 / 8))
