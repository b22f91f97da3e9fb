"""The generated training data: deterministic, balanced, held-out pairs really held out, masks right."""

from collections import Counter

import numpy as np

from sd.data.captions import canonical_caption
from sd.data.dataset import combinations, generate, sample_scenes
from sd.data.shapes import Scene, render
from sd.data.vocabulary import COLOURS, HELD_OUT, POSITIONS, SHAPES, SIZES
from sd.loading.tokenizer_files import default_tokenizer


def test_vocabulary_meets_the_minimums():
    assert len(SHAPES) >= 8 and len(COLOURS) >= 10 and len(SIZES) == 2 and len(POSITIONS) >= 5
    assert {"circle", "square", "triangle", "star", "heart", "ring", "cross", "diamond"} <= set(SHAPES)


def test_same_seed_same_data_and_other_seed_other_data():
    a, b, c = generate(50, seed=3), generate(50, seed=3), generate(50, seed=4)
    assert np.array_equal(a.images, b.images) and a.captions == b.captions and a.scenes == b.scenes
    assert not np.array_equal(a.images, c.images)


def test_held_out_pairs_never_appear_in_training_and_only_they_appear_held_out():
    train = sample_scenes(3000, seed=0)
    assert not any((s.colour, s.shape) in HELD_OUT for s in train)
    held = sample_scenes(300, seed=0, held_out=True)
    assert all((s.colour, s.shape) in HELD_OUT for s in held)
    assert len(combinations(False)) + len(combinations(True)) == len(SHAPES) * len(COLOURS) * (len(COLOURS) - 1) * 10


def test_sampling_is_balanced_over_combinations():
    scenes = sample_scenes(len(combinations(False)), seed=1)  # exactly one pass over every combination
    keys = Counter((s.shape, s.colour, s.background, s.size, s.position) for s in scenes)
    assert len(keys) == len(combinations(False)) and set(keys.values()) == {1}


def test_render_colours_mask_and_antialiasing():
    image, mask = render(Scene("square", "red", "blue", "large", "center"))
    assert image.shape == (64, 64, 3) and mask.shape == (64, 64)
    assert tuple(image[32, 32]) == COLOURS["red"] and tuple(image[2, 2]) == COLOURS["blue"]
    assert mask[32, 32] == 1 and mask[2, 2] == 0
    assert 0.05 < mask.mean() < 0.5
    # Anti-aliased edges: a slanted outline leaves pixels that are a blend of the two colours.
    star, _ = render(Scene("star", "red", "blue", "large", "center"))
    pure = (star == COLOURS["red"]).all(-1) | (star == COLOURS["blue"]).all(-1)
    assert 20 < (~pure).sum() < 400


def test_positions_and_sizes_are_where_they_say():
    for position, (x, y) in POSITIONS.items():
        _, mask = render(Scene("circle", "white", "black", "small", position))
        ys, xs = np.nonzero(mask)
        assert abs(xs.mean() - x) < 1.5 and abs(ys.mean() - y) < 1.5, position
    small = render(Scene("circle", "white", "black", "small", "center"))[1].sum()
    large = render(Scene("circle", "white", "black", "large", "center"))[1].sum()
    assert large > 2 * small


def test_ring_has_a_hole_and_captions_vary_but_name_every_attribute():
    _, ring = render(Scene("ring", "white", "black", "large", "center"))
    assert ring[32, 32] == 0 and ring.sum() > 100
    data = generate(200, seed=5)
    assert len(set(data.captions)) > 150
    for scene, caption in zip(data.scenes, data.captions, strict=True):
        assert scene.colour in caption and scene.shape in caption and scene.background in caption
    scene = Scene("star", "yellow", "black", "small", "top left")
    assert canonical_caption(scene) == "a small yellow star in the top left on a black background"


def test_captions_use_the_real_clip_tokenizer_without_unknown_pieces():
    tokenizer = default_tokenizer()
    caption = "a large red circle in the top left on a blue background"
    assert tokenizer.tokenize(caption)[:4] == ["a</w>", "large</w>", "red</w>", "circle</w>"]
