"""Everything a caption can name: shapes, colours, sizes, positions, and the pairs held out of training.

The held-out colour-shape pairs never appear in training images, so prompting for them measures
compositional generalisation: has the model learned "green" and "circle", or only the combinations?
"""

from __future__ import annotations

SHAPES = ("circle", "square", "triangle", "star", "heart", "ring", "cross", "diamond")

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 38, 38),
    "orange": (245, 135, 20),
    "yellow": (245, 220, 40),
    "green": (40, 165, 65),
    "teal": (20, 160, 160),
    "blue": (35, 80, 220),
    "purple": (130, 50, 180),
    "pink": (245, 130, 190),
    "brown": (125, 75, 35),
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
    "black": (20, 20, 20),
}

# Circumradius in pixels at 64x64. At f=8 a small shape spans under 3 latent cells: any smaller and the
# autoencoder keeps its colour but loses its outline (measured: 38% of radius-8.5 shapes read correctly).
SIZES: dict[str, float] = {"small": 10.5, "large": 15.0}

POSITIONS: dict[str, tuple[float, float]] = {  # (x, y) centre in pixels at 64x64
    "top left": (19.0, 19.0),
    "top right": (45.0, 19.0),
    "center": (32.0, 32.0),
    "bottom left": (19.0, 45.0),
    "bottom right": (45.0, 45.0),
}

# One held-out colour per shape, each colour used at most once.
HELD_OUT: frozenset[tuple[str, str]] = frozenset(
    {
        ("green", "circle"),
        ("purple", "square"),
        ("blue", "triangle"),
        ("red", "star"),
        ("yellow", "heart"),
        ("orange", "ring"),
        ("pink", "cross"),
        ("white", "diamond"),
    }
)
