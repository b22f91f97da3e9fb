"""The measures of a transition: CIELAB against published values, Gini, detour, the crossfade guard."""

import numpy as np
import pytest
from PIL import Image

from sd.cielab import delta_e, image_lab, srgb_to_lab
from sd.gif.smoothness import CROSSFADE_THRESHOLD, blend_gap, gini, transition_stats
from sd.gif.timeline import FrameSpec


def flat(rgb, size: int = 16) -> Image.Image:
    return Image.fromarray(np.full((size, size, 3), rgb, np.uint8))


# Bruce Lindbloom's calculator (sRGB, D65, 2 degree observer), 4 decimals.
@pytest.mark.parametrize(
    "rgb, lab",
    [
        ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
        ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
        ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
        ((255, 255, 255), (100.0, 0.0, 0.0)),
        ((128, 128, 128), (53.5850, 0.0, 0.0)),
        ((0, 0, 0), (0.0, 0.0, 0.0)),
    ],
)
def test_cielab_matches_published_values(rgb, lab):
    np.testing.assert_allclose(srgb_to_lab(np.array(rgb, np.uint8)), lab, atol=1e-3)


def test_gini_of_equal_steps_is_0_and_of_one_step_is_its_maximum():
    assert gini([2.0] * 8) == 0.0
    assert gini([0.0] * 7 + [5.0]) == pytest.approx(7 / 8)  # (n - 1) / n
    assert gini([1.0, 2.0, 3.0, 4.0]) == pytest.approx(20 / (2 * 16 * 2.5))  # sum |di - dj| = 20


def test_stats_of_an_even_straight_path_and_of_a_jump_and_a_detour():
    blue, black, teal = (35, 80, 220), (20, 20, 20), (20, 160, 160)
    specs = [FrameSpec(0, 1, i / 4) for i in range(4)] + [FrameSpec(1, 1, 0.0)]
    even = [flat(np.round(np.array(blue) + (np.array(black) - blue) * i / 4)) for i in range(5)]
    stats = transition_stats(specs, even)[0]
    assert stats.steps == 4 and stats.jump_ratio == pytest.approx(1.0, abs=0.05)
    assert stats.gini < 0.02 and stats.detour == pytest.approx(1.0, abs=0.02)  # sRGB steps, nearly straight in Lab

    jump = [flat(blue)] * 4 + [flat(black)]  # held, then a cut
    stats = transition_stats(specs, jump)[0]
    assert stats.jump_ratio == float("inf") and stats.gini == pytest.approx(3 / 4) and stats.detour == 1.0

    via_teal = [flat(blue), flat(blue), flat(teal), flat(black), flat(black)]
    lab = {name: srgb_to_lab(np.array(c)) for name, c in (("blue", blue), ("teal", teal), ("black", black))}
    expected = (np.linalg.norm(lab["blue"] - lab["teal"]) + np.linalg.norm(lab["teal"] - lab["black"])) / (
        np.linalg.norm(lab["blue"] - lab["black"])
    )
    assert transition_stats(specs, via_teal)[0].detour == pytest.approx(expected, rel=1e-6)  # 1.97


def shape_frame(x: int, colour=(245, 220, 40), background=(35, 80, 220)) -> Image.Image:
    image = np.full((32, 32, 3), background, np.uint8)
    image[12:20, x : x + 8] = colour
    return Image.fromarray(image)


def test_a_pixel_blend_is_a_crossfade_and_a_moved_shape_or_a_held_keyframe_is_not():
    a, b = shape_frame(2), shape_frame(22)
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    blended = Image.fromarray(np.round(0.3 * x + 0.7 * y).astype(np.uint8))  # a double exposure
    gap = blend_gap(blended, a, b)
    assert gap.alpha == pytest.approx(0.7, abs=0.01) and gap.blend < 0.01 and gap.hold > 0.25
    assert gap.is_crossfade()

    moved = blend_gap(shape_frame(12), a, b)  # the shape halfway across: what a morph should draw
    assert moved.blend > CROSSFADE_THRESHOLD and not moved.is_crossfade()
    held = blend_gap(a, a, b)
    assert held.hold == 0.0 and held.alpha == 0.0 and not held.is_crossfade()


def test_delta_e_is_the_mean_over_pixels():
    a, b = flat((255, 0, 0), 4), np.array(flat((255, 0, 0), 4))
    b[:2] = 0  # half the pixels black: delta E of red to black is |(53.24, 80.09, 67.20)|
    expected = np.linalg.norm([53.2408, 80.0925, 67.2032]) / 2
    assert delta_e(image_lab(a), image_lab(Image.fromarray(b))) == pytest.approx(expected, rel=1e-4)
