"""Wander: in-betweens drawn from known scenes are on or off the way between their keyframes, as defined."""

import numpy as np
import pytest
from PIL import Image

from sd.data.shapes import Scene, render
from sd.eval.classifier import load_classifier
from sd.eval.wander import COLOUR_TOLERANCE, NAMED_LAB, POSITION_TOLERANCE, off_the_way, segment_distance


def draw(shape="circle", colour="red", background="blue", size="large", position="center") -> Image.Image:
    return Image.fromarray(render(Scene(shape, colour, background, size, position))[0])


@pytest.fixture(scope="module")
def judge():
    return load_classifier()


def test_tolerances_are_half_the_nearest_named_gaps():
    blue_purple = np.linalg.norm(NAMED_LAB["blue"] - NAMED_LAB["purple"])
    assert round(COLOUR_TOLERANCE, 2) == round(blue_purple / 2, 2) == 13.94
    assert round(POSITION_TOLERANCE, 6) == round(np.hypot(13, 13) / 2, 6)  # the centre to a corner, halved
    orange = segment_distance(NAMED_LAB["orange"], NAMED_LAB["red"], NAMED_LAB["yellow"])
    teal = segment_distance(NAMED_LAB["teal"], NAMED_LAB["blue"], NAMED_LAB["black"])
    assert orange < COLOUR_TOLERANCE < teal  # 9.1 and 61.9


def test_background_through_teal_is_off_the_way_and_through_dark_blue_is_not(judge):
    a, b = draw(background="blue"), draw(background="black")
    dark_blue = Image.fromarray(np.round(np.asarray(a, float) * 0.5 + np.asarray(b, float) * 0.5).astype(np.uint8))
    reasons = off_the_way([a, a, dark_blue, draw(background="teal"), b], judge)
    assert reasons[:2] == [[], []]
    assert "background teal" in reasons[2] and any(r.startswith("border colour") for r in reasons[2])


def test_shape_size_colour_and_position_off_the_way(judge):
    a = draw(colour="red", position="top left")
    b = draw(colour="yellow", position="bottom right")
    frames = [a, draw(colour="orange", position="center"), draw(colour="red", position="top right"),
              draw(shape="heart", colour="yellow", position="bottom right"), draw(colour="green", size="small"),
              b]  # fmt: skip
    reasons = off_the_way(frames, judge)
    assert reasons[0] == []  # orange between red and yellow, the centre between two opposite corners
    assert reasons[1] == ["position top right"]
    assert reasons[2] == ["shape heart"]
    assert sorted(reasons[3]) == ["colour green", "size small"]  # the centre is on the way, as in frame 1
