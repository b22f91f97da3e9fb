"""Datasets of rendered scenes, deterministic by seed and balanced over attribute combinations.

Every valid combination (shape, colour, background, size, position; colour != background) appears
equally often, in a seeded random order, with small jitters of position, scale and angle on top.
Drawing combinations evenly rather than attributes independently makes rare pairings as common as any.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from sd.data.captions import canonical_caption, random_caption
from sd.data.shapes import Scene, render
from sd.data.vocabulary import COLOURS, HELD_OUT, POSITIONS, SHAPES, SIZES


def combinations(held_out: bool) -> list[tuple[str, str, str, str, str]]:
    """(shape, colour, background, size, position) tuples: the held-out colour-shape pairs, or all others."""
    return [
        (shape, colour, background, size, position)
        for shape, colour, background, size, position in itertools.product(SHAPES, COLOURS, COLOURS, SIZES, POSITIONS)
        if colour != background and ((colour, shape) in HELD_OUT) == held_out
    ]


@dataclass
class ShapesData:
    images: np.ndarray  # (N, 64, 64, 3) uint8
    masks: np.ndarray  # (N, 64, 64) uint8 in {0, 1}
    scenes: list[Scene]
    captions: list[str]

    def __len__(self) -> int:
        return len(self.scenes)


def sample_scenes(n: int, seed: int, held_out: bool = False) -> list[Scene]:
    rng = np.random.default_rng(seed)
    combos = combinations(held_out)
    scenes = []
    while len(scenes) < n:
        for index in rng.permutation(len(combos))[: n - len(scenes)]:
            shape, colour, background, size, position = combos[index]
            round_shape = shape in ("circle", "ring")
            scenes.append(
                Scene(shape, colour, background, size, position,
                      dx=float(rng.uniform(-2, 2)), dy=float(rng.uniform(-2, 2)),
                      scale=float(rng.uniform(0.9, 1.1)), angle=0.0 if round_shape else float(rng.uniform(-10, 10)))
            )  # fmt: skip
    return scenes


def generate(n: int, seed: int, held_out: bool = False, canonical: bool = False, progress: bool = False) -> ShapesData:
    """`n` rendered scenes with captions (random wording, or the canonical one for evaluation)."""
    scenes = sample_scenes(n, seed, held_out)
    rng = np.random.default_rng(seed + 1_000_003)
    images = np.empty((n, 64, 64, 3), dtype=np.uint8)
    masks = np.empty((n, 64, 64), dtype=np.uint8)
    captions = []
    for i, scene in enumerate(tqdm(scenes, desc="rendering shapes", disable=not progress, leave=False)):
        images[i], masks[i] = render(scene)
        captions.append(canonical_caption(scene) if canonical else random_caption(scene, rng))
    return ShapesData(images, masks, scenes, captions)
