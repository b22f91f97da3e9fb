"""'Inspire me': keyframe prompts composed offline from the model's own vocabulary, never from a web service.

- The shapes models (the shipped tiny-shapes and mobile-tiny) know exactly the words of their caption grammar
  (sd/data/vocabulary.py): prompts are canonical captions of random scenes, so every one is drawable.
  Topic words that name a colour, shape, size, position or background are kept in every prompt.
- Any other checkpoint reads CLIP's vocabulary: prompts are made of its whole-word tokens (the first merges
  are the commonest words, so only those are drawn), around the user's topics.

Same seed, same prompts.
"""

from __future__ import annotations

import re

import numpy as np

from sd.data.captions import canonical_caption
from sd.data.shapes import Scene
from sd.data.vocabulary import COLOURS, POSITIONS, SHAPES, SIZES

VOCABULARIES = ("shapes", "clip")
COMMON_WORDS = 12_000  # draw CLIP words from the earliest merges only: common, real words
STYLE_TEMPLATES = (
    "{a} {b} in a {c} landscape, {d} light",
    "a painting of {a} and {b}, {c} colours",
    "{a} made of {b}, {c} background, detailed",
    "a photo of {a} near {b}, {c} mood",
)


def topic_words(topics: str) -> list[str]:
    return [w for w in re.split(r"[^a-z]+", topics.lower()) if w]


def _shapes_prompt(rng: np.random.Generator, topics: str) -> str:
    words = " ".join(topic_words(topics))

    def choose(options) -> str:
        named = [o for o in options if (f" {o} " in f" {words} ")] if words else []
        pool = named or list(options)
        return pool[int(rng.integers(len(pool)))]

    colour = choose(COLOURS)
    background = choose([c for c in COLOURS if c != colour])
    scene = Scene(shape=choose(SHAPES), colour=colour, background=background, size=choose(SIZES),
                  position=choose(POSITIONS))  # fmt: skip
    return canonical_caption(scene)


def clip_words(tokenizer) -> list[str]:
    """Whole words (tokens ending in </w>) of at least 5 letters, from the commonest merges."""
    words = []
    for token, index in tokenizer.encoder.items():
        if 512 <= index < 512 + COMMON_WORDS and token.endswith("</w>"):
            word = token[:-4]
            if word.isalpha() and word.isascii() and len(word) >= 5:
                words.append(word)
    return sorted(words)


def _clip_prompt(rng: np.random.Generator, topics: str, words: list[str]) -> str:
    fill = [words[int(rng.integers(len(words)))] for _ in range(4)]
    named = topic_words(topics)
    for i, word in enumerate(named[:2]):
        fill[i] = word
    template = STYLE_TEMPLATES[int(rng.integers(len(STYLE_TEMPLATES)))]
    return template.format(a=fill[0], b=fill[1], c=fill[2], d=fill[3])


def inspire(keyframes: int = 3, gap: int = 12, seed: int = 0, topics: str = "", vocabulary: str = "shapes") -> str:
    """Keyframe text: `keyframes` prompts, `gap` frames apart, ready for the GIF driver."""
    if vocabulary not in VOCABULARIES:
        raise ValueError(f"vocabulary must be one of {VOCABULARIES}")
    rng = np.random.default_rng(seed)
    if vocabulary == "shapes":
        prompts = [_shapes_prompt(rng, topics) for _ in range(keyframes)]
    else:
        from sd.loading.tokenizer_files import default_tokenizer

        words = clip_words(default_tokenizer())
        prompts = [_clip_prompt(rng, topics, words) for _ in range(keyframes)]
    return "\n".join(f"{i * gap}: {prompt}" for i, prompt in enumerate(prompts)) + "\n"
