"""A small grammar of captions, varied in wording and order, so the text encoder learns meanings, not
one fixed sentence: "a large red circle in the top left on a blue background", "blue background with a
big red circle at the upper left", ..."""

from __future__ import annotations

import numpy as np

from sd.data.shapes import Scene

SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
POSITION_WORDS = {
    "top left": ("top left", "upper left"),
    "top right": ("top right", "upper right"),
    "center": ("center", "middle"),
    "bottom left": ("bottom left", "lower left"),
    "bottom right": ("bottom right", "lower right"),
}
TEMPLATES = (
    "a {size} {colour} {shape} in the {position} on a {background} background",
    "a {size} {colour} {shape} at the {position}, {background} background",
    "{background} background with a {size} {colour} {shape} in the {position}",
    "a {colour} {shape}, {size}, in the {position} on {background}",
    "in the {position}, a {size} {colour} {shape} on a {background} background",
    "{size} {colour} {shape} on {background}, {position}",
)


def canonical_caption(scene: Scene) -> str:
    """The first template with the first word for each attribute: the wording evaluation prompts use."""
    return TEMPLATES[0].format(
        size=scene.size, colour=scene.colour, shape=scene.shape, position=scene.position, background=scene.background
    )


def random_caption(scene: Scene, rng: np.random.Generator) -> str:
    def pick(options: tuple[str, ...]) -> str:
        return options[int(rng.integers(len(options)))]

    return pick(TEMPLATES).format(
        size=pick(SIZE_WORDS[scene.size]),
        colour=scene.colour,
        shape=scene.shape,
        position=pick(POSITION_WORDS[scene.position]),
        background=scene.background,
    )
