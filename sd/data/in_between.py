"""The ideal in-between of two scenes: what a morph between two keyframes of the shapes world would draw.

At blend weight w every attribute moves on a straight path of its own, from scene A's value to scene B's:

    colour, background   (1 - w) Lab_A + w Lab_B in CIELAB, back to sRGB     (a detour of 1, by construction)
    size                 (1 - w) r_A + w r_B, the circumradius
    position             (1 - w) c_A + w c_B, the centre
    shape                each outline resampled to OUTLINE_POINTS points evenly along its perimeter, B's
                         turned to the cyclic shift nearest A's, then every point moved on a straight line;
                         a ring's hole (RING_HOLE of its radius) shrinks to nothing, or grows from it

No model draws these: they are the floor of the transition measures on this world (`python -m sd bench
morph`'s "ideal" rows), and, through the autoencoder, what the shipped decoder can show of an ideal morph.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image, ImageDraw

from sd.cielab import lab_to_srgb, srgb_to_lab
from sd.data.dataset import ShapesData, sample_scenes
from sd.data.shapes import OUTLINES, RING_HOLE, SIZE, SUPERSAMPLE, Scene, composite
from sd.data.vocabulary import COLOURS, POSITIONS, SIZES

ATTRIBUTES = ("shape", "colour", "background", "size", "position")
OUTLINE_POINTS = 96  # enough that the heart's 48 corners get one each at most


def _round_outline(n: int) -> np.ndarray:
    """A unit circle as n points, clockwise on screen from the top, as the polygon outlines run."""
    angles = 2 * np.pi * np.arange(n) / n
    return np.stack([np.sin(angles), -np.cos(angles)], -1)  # (n, 2)


def resampled_outline(shape: str, n: int = OUTLINE_POINTS) -> np.ndarray:
    """(n, 2) points along the closed outline of `shape` at unit radius: every corner, and each edge's share
    of n by its length, evenly spaced on it (so the polygon drawn is the shape itself, corners included)."""
    if shape in ("circle", "ring"):
        return _round_outline(n)
    corners = np.array(OUTLINES[shape], dtype=np.float64)  # (k, 2)
    edges = np.roll(corners, -1, axis=0) - corners  # (k, 2): corner i to corner i + 1
    lengths = np.linalg.norm(edges, axis=1)
    counts = np.maximum(1, np.round(n * lengths / lengths.sum()).astype(int))  # (k,): points per edge
    counts[np.argmax(counts)] += n - counts.sum()  # exactly n in all
    return np.concatenate([c + np.arange(m)[:, None] / m * e for c, e, m in zip(corners, edges, counts, strict=True)])


def aligned(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`b`'s points shifted cyclically to lie nearest `a`'s, so the morph turns neither outline."""
    shifts = [float(((a - np.roll(b, s, axis=0)) ** 2).sum()) for s in range(len(b))]
    return np.roll(b, int(np.argmin(shifts)), axis=0)


def _lab(name: str) -> np.ndarray:
    return srgb_to_lab(np.array(COLOURS[name], dtype=np.float64))


def render_between(a: Scene, b: Scene, w: float) -> tuple[np.ndarray, np.ndarray]:
    """(image (64, 64, 3) uint8, mask (64, 64) uint8) of the ideal in-between of `a` (w = 0) and `b` (w = 1);
    jitters ignored."""
    k = SUPERSAMPLE
    (xa, ya), (xb, yb) = POSITIONS[a.position], POSITIONS[b.position]
    cx, cy = ((1 - w) * xa + w * xb) * k, ((1 - w) * ya + w * yb) * k
    r = ((1 - w) * SIZES[a.size] + w * SIZES[b.size]) * k
    outline_a = resampled_outline(a.shape)
    outline = (1 - w) * outline_a + w * aligned(outline_a, resampled_outline(b.shape))  # (n, 2) at unit radius
    coverage = Image.new("L", (SIZE * k, SIZE * k), 0)
    draw = ImageDraw.Draw(coverage)
    if {a.shape, b.shape} <= {"circle", "ring"}:  # round to round: PIL's ellipse, as render() draws it
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    else:
        draw.polygon([(cx + r * x, cy + r * y) for x, y in outline], fill=255)
    hole = ((1 - w) * (a.shape == "ring") + w * (b.shape == "ring")) * RING_HOLE * r
    if hole > 0:
        draw.ellipse((cx - hole, cy - hole, cx + hole, cy + hole), fill=0)
    colour = lab_to_srgb((1 - w) * _lab(a.colour) + w * _lab(b.colour))
    background = lab_to_srgb((1 - w) * _lab(a.background) + w * _lab(b.background))
    return composite(coverage, tuple(colour), tuple(background))


def ideal_morph(a: Scene, b: Scene, weights: list[float]) -> list[Image.Image]:
    """The ideal frames at `weights` (0 for `a`, 1 for `b`)."""
    return [Image.fromarray(render_between(a, b, w)[0]) for w in weights]


def in_between_data(n: int, seed: int) -> ShapesData:
    """`n` ideal in-betweens (no captions) at weights w ~ U(0, 1), for teaching a decoder what lies between:
    scene A from the training combinations, B the same with each attribute redrawn with probability 1/2."""
    rng = np.random.default_rng(seed)
    firsts, others = sample_scenes(n, seed), sample_scenes(n, seed + 1)
    images = np.empty((n, 64, 64, 3), dtype=np.uint8)
    masks = np.empty((n, 64, 64), dtype=np.uint8)
    for i, (a, other) in enumerate(zip(firsts, others, strict=True)):
        changed = {f: getattr(other, f) for f in ATTRIBUTES if rng.random() < 0.5}
        b = replace(a, **changed)
        if b.colour == b.background:  # no scene draws a shape in its background's colour
            b = replace(b, background=next(c for c in (a.background, other.background, *COLOURS) if c != b.colour))
        images[i], masks[i] = render_between(a, b, float(rng.random()))
    return ShapesData(images, masks, firsts, [""] * n)
