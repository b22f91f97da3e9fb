"""The ideal in-between: each attribute on its straight path, the keyframes as the scene renderer draws them."""

import numpy as np
import pytest

from sd.cielab import lab_to_srgb, srgb_to_lab
from sd.data.in_between import OUTLINE_POINTS, render_between, resampled_outline
from sd.data.shapes import OUTLINES, Scene, render
from sd.data.vocabulary import COLOURS, POSITIONS

A = Scene("circle", "red", "blue", "large", "center")


def test_lab_to_srgb_undoes_srgb_to_lab():
    rgb = np.random.default_rng(0).uniform(0, 255, (500, 3))
    assert np.abs(lab_to_srgb(srgb_to_lab(rgb)) - rgb).max() < 1e-9


@pytest.mark.parametrize("shape", sorted(OUTLINES))
def test_outlines_keep_every_corner(shape):
    points = resampled_outline(shape)
    assert points.shape == (OUTLINE_POINTS, 2)
    for corner in OUTLINES[shape]:
        assert np.linalg.norm(points - corner, axis=1).min() < 1e-12


@pytest.mark.parametrize(
    "b",
    [Scene("star", "yellow", "black", "small", "top left"), Scene("cross", "white", "brown", "small", "bottom right"),
     Scene("ring", "teal", "pink", "large", "center")],
)  # fmt: skip
def test_the_ends_are_the_keyframes_up_to_antialiasing(b):
    for scene, w in ((A, 0.0), (b, 1.0)):
        drawn = render_between(A, b, w)[0].astype(int)
        exact = render(scene)[0].astype(int)
        assert np.abs(drawn - exact).mean() < 1.0  # measured at most 0.42 (polygon corners rasterised apart)
        assert (np.abs(drawn - exact).max(axis=-1) > 2).mean() < 0.02  # edge pixels only


def test_colours_move_on_the_straight_line_in_cielab():
    b = Scene("circle", "red", "black", "large", "center")
    lab = [srgb_to_lab(render_between(A, b, w)[0][0, 0].astype(float)) for w in (0.0, 0.25, 0.5, 0.75, 1.0)]
    ends = srgb_to_lab(np.array([COLOURS["blue"], COLOURS["black"]], dtype=float))
    for w, value in zip((0.0, 0.25, 0.5, 0.75, 1.0), lab, strict=True):
        assert np.linalg.norm(value - ((1 - w) * ends[0] + w * ends[1])) < 1.0  # 8-bit rounding only


def test_size_grows_and_position_moves_evenly():
    b = Scene("circle", "red", "blue", "small", "top left")
    blue = np.array(COLOURS["blue"])
    masks = [np.abs(render_between(A, b, w)[0].astype(int) - blue).sum(-1) > 60 for w in np.linspace(0, 1, 9)]
    areas = [m.sum() for m in masks]
    assert all(x > y for x, y in zip(areas, areas[1:], strict=False))  # shrinks at every step
    ys, xs = np.nonzero(masks[4])
    start, end = np.array(POSITIONS["center"]), np.array(POSITIONS["top left"])
    assert np.linalg.norm(np.array([xs.mean(), ys.mean()]) + 0.5 - (start + end) / 2) < 0.6  # pixel centres


def test_a_rings_hole_closes_into_the_other_shape():
    ring = Scene("ring", "white", "brown", "small", "center")
    cross = Scene("cross", "white", "brown", "small", "center")
    centre = [render_between(ring, cross, w)[0][32, 32] for w in (0.0, 0.5, 1.0)]
    assert tuple(centre[0]) == COLOURS["brown"] and tuple(centre[2]) == COLOURS["white"]
    assert tuple(centre[1]) == COLOURS["brown"]  # half the hole (2.9 px) still covers the centre pixel
