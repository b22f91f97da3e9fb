"""The attention-interpolation bench puts frames together as the GIF renderer does, and AID changes only in-betweens."""

from __future__ import annotations

import numpy as np
import pytest

from sd.bench.attention_interpolation import Transition, contact_sheet, render_transition
from sd.gif.animate import animate
from sd.gif.attention_interpolation import AttentionInterpolation
from sd.gif.settings import GifSettings
from sd.pipeline import StableDiffusionPipeline
from tests.tiny_checkpoint import tiny_checkpoint

PROMPTS = ("a red circle on a blue background", "a yellow star on a black background")


@pytest.fixture(scope="module")
def pipe() -> StableDiffusionPipeline:
    return StableDiffusionPipeline(tiny_checkpoint())


def pixels(images) -> np.ndarray:
    return np.stack([np.asarray(image) for image in images])


@pytest.mark.parametrize("share", [True, False])
def test_without_interpolation_the_frames_are_the_renderers(pipe, share):
    settings = GifSettings(seed=1, steps=6, share=share)
    ours = render_transition(pipe, PROMPTS, 4, settings)
    theirs = animate(f"0: {PROMPTS[0]}\n4: {PROMPTS[1]}", settings=settings, pipe=pipe, cache_dir=None, progress=False)
    assert np.array_equal(pixels(ours.images), pixels(theirs.frames))
    assert ours.specs == theirs.specs and ours.unet_steps == theirs.unet_steps


def test_interpolation_changes_the_in_betweens_only(pipe, tmp_path):
    settings = GifSettings(seed=1, steps=6, share=False)
    plain = render_transition(pipe, PROMPTS, 4, settings, label="plain")
    aid = render_transition(pipe, PROMPTS, 4, settings, AttentionInterpolation(), label="AID")
    a, b = pixels(plain.images), pixels(aid.images)
    assert np.array_equal(a[[0, -1]], b[[0, -1]])  # the keyframes
    assert all(not np.array_equal(a[i], b[i]) for i in (1, 2, 3))
    assert plain.unet_steps == aid.unet_steps == 5 * 6
    contact_sheet([plain, aid], tmp_path / "sheet.png")
    assert (tmp_path / "sheet.png").stat().st_size > 0
    assert isinstance(plain, Transition) and plain.jump_ratio >= 1.0 and plain.detour >= 1.0
