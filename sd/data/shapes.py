"""Drawing one scene: an anti-aliased shape on a plain background, plus its segmentation mask.

Shapes are drawn at 4x resolution and box-filtered down, which anti-aliases edges exactly (each output
pixel is the covered fraction of its area); the mask is the same coverage thresholded at one half.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from sd.data.vocabulary import COLOURS, POSITIONS, SIZES

SIZE = 64
SUPERSAMPLE = 4
RING_HOLE = 0.55  # a ring's hole radius, as a share of its outer radius


@dataclass(frozen=True)
class Scene:
    """The ground truth of one image; `dx, dy, scale, angle` are small random jitters."""

    shape: str
    colour: str
    background: str
    size: str
    position: str
    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    angle: float = 0.0  # degrees


def _star(points: int = 5, inner: float = 0.45) -> list[tuple[float, float]]:
    return [
        ((1.0 if i % 2 == 0 else inner) * math.sin(math.pi * i / points),
         -(1.0 if i % 2 == 0 else inner) * math.cos(math.pi * i / points))
        for i in range(2 * points)
    ]  # fmt: skip


def _heart(n: int = 48) -> list[tuple[float, float]]:
    """The classic parametric heart, scaled to about unit radius and centred."""
    pts = []
    for i in range(n):
        t = 2 * math.pi * i / n
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        pts.append((x / 17.0, -(y + 2.5) / 17.0))
    return pts


def _cross(arm: float = 0.34) -> list[tuple[float, float]]:
    a, r = arm, 0.95
    return [(-a, -r), (a, -r), (a, -a), (r, -a), (r, a), (a, a), (a, r), (-a, r), (-a, a), (-r, a), (-r, -a), (-a, -a)]


OUTLINES: dict[str, list[tuple[float, float]]] = {
    "square": [(-0.78, -0.78), (0.78, -0.78), (0.78, 0.78), (-0.78, 0.78)],
    "diamond": [(0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)],
    "triangle": [(0.0, -1.0), (0.866, 0.5), (-0.866, 0.5)],
    "star": _star(),
    "heart": _heart(),
    "cross": _cross(),
}


def _polygon(outline: list[tuple[float, float]], cx: float, cy: float, r: float, angle: float) -> list[tuple]:
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return [(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in outline]


def render(scene: Scene, colours: dict[str, tuple[int, int, int]] = COLOURS) -> tuple[np.ndarray, np.ndarray]:
    """(image (64, 64, 3) uint8, mask (64, 64) uint8 in {0, 1}) for one scene; `colours` maps colour words
    to RGB (another palette draws a style the model has not seen, for LoRA fine-tuning)."""
    k = SUPERSAMPLE
    cx, cy = POSITIONS[scene.position]
    cx, cy = (cx + scene.dx) * k, (cy + scene.dy) * k
    r = SIZES[scene.size] * scene.scale * k
    coverage = Image.new("L", (SIZE * k, SIZE * k), 0)
    draw = ImageDraw.Draw(coverage)
    if scene.shape in ("circle", "ring"):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        if scene.shape == "ring":
            inner = r * RING_HOLE
            draw.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=0)
    else:
        draw.polygon(_polygon(OUTLINES[scene.shape], cx, cy, r, scene.angle), fill=255)
    return composite(coverage, colours[scene.colour], colours[scene.background])


def composite(
    coverage: Image.Image, colour: tuple[float, float, float], background: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """A SUPERSAMPLE-times coverage drawing -> (image (64, 64, 3) uint8, mask (64, 64) uint8): box-filtered
    down, so each pixel is the covered fraction of its area, and blended between the two colours by it."""
    alpha = np.asarray(coverage.resize((SIZE, SIZE), Image.BOX), dtype=np.float32)[..., None] / 255.0  # (64, 64, 1)
    fg = np.array(colour, dtype=np.float32)
    bg = np.array(background, dtype=np.float32)
    image = alpha * fg + (1.0 - alpha) * bg  # (64, 64, 3), blended by coverage
    return np.round(image).astype(np.uint8), (alpha[..., 0] >= 0.5).astype(np.uint8)
