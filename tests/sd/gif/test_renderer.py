"""Frames of the GIF driver: batch-invariant, keyframes exact, sharing cheaper, each option doing its job."""

import numpy as np
import pytest
from PIL import Image

from sd.gif.animate import animate
from sd.gif.keyframes import parse_keyframes
from sd.gif.renderer import FrameRenderer
from sd.gif.settings import DEFAULT_BRANCH, GifSettings
from sd.gif.timeline import FrameSpec
from sd.loading.checkpoint import load_checkpoint
from sd.paths import DEFAULT_CHECKPOINT
from sd.pipeline import StableDiffusionPipeline
from sd.samplers.spacing import SPACINGS
from tests.sd.gif.conftest import KEYFRAMES

FAST = dict(steps=6, frame_spacing="planned")  # the planned weights: the renderer's own frames


def pixels(frames: list[Image.Image]) -> np.ndarray:
    return np.stack([np.asarray(f) for f in frames]).astype(np.int16)  # (F, H, W, 3)


def run(pipe, **settings):
    return animate(KEYFRAMES, settings=GifSettings(**FAST | settings), pipe=pipe, cache_dir=None, progress=False)


@pytest.mark.parametrize("share", [True, False])
def test_batch_gives_the_same_pixels_as_one_frame_at_a_time(tiny_pipe, share):
    one = pixels(run(tiny_pipe, share=share, batch=1).frames)
    # 7 frames: chunks of 2+2+2+1 and 3+3+1; UNet batches of up to 6 (renderer.py); None: 1 frame a call, guided
    for batch in (None, 2, 3):
        assert np.array_equal(pixels(run(tiny_pipe, share=share, batch=batch).frames), one), batch


def test_batch_is_invariant_without_guidance_too(tiny_pipe):
    one = pixels(run(tiny_pipe, guidance=1.0, batch=1).frames)
    for batch in (None, 3):  # None: the default, 2 frames a call when unguided
        assert np.array_equal(pixels(run(tiny_pipe, guidance=1.0, batch=batch).frames), one), batch


@pytest.mark.parametrize(("guidance", "frames_per_call"), [(5.0, 1), (1.0, 2)])
def test_default_batch_fills_two_unet_rows(tiny_pipe, guidance, frames_per_call):
    """Guided, a frame is 2 rows (its branches); unguided, the default pairs frames instead of running a lone
    frame twice: the same rows a call, half the calls."""
    calls = []
    hook = tiny_pipe.checkpoint.unet.register_forward_pre_hook(lambda _m, args: calls.append(args[0].shape[0]))
    try:
        anim = run(tiny_pipe, guidance=guidance, share=False, frame_spacing="planned")
    finally:
        hook.remove()
    assert set(calls) == {2}  # rows of every UNet call (7 frames unguided: 3 pairs, then 1 frame run as 2 rows)
    frames = len(anim.frames)
    assert len(calls) == FAST["steps"] * -(-frames // frames_per_call), (frames, len(calls))


def test_keyframes_are_the_txt2img_images_of_their_prompts_and_seeds(tiny_pipe):
    anim = run(tiny_pipe, share=False, seed=10)
    for keyframe in parse_keyframes(KEYFRAMES):
        expected = tiny_pipe.txt2img(
            keyframe.prompt, seed=10 + keyframe.frame, steps=6, sampler="dpmpp_2m", guidance=5.0, progress=False
        )[0]
        assert np.array_equal(np.asarray(anim.frames[keyframe.frame]), np.asarray(expected)), keyframe


def test_trajectory_sharing_costs_fewer_unet_steps_and_keeps_keyframes(tiny_pipe):
    shared, alone = run(tiny_pipe), run(tiny_pipe, share=False)
    assert alone.unet_steps == 7 * 6  # every frame from its own noise
    branch = round(6 * DEFAULT_BRANCH)  # in-betweens run only the steps after the branch point
    assert shared.unet_steps == 3 * 6 + 4 * (6 - branch)
    for index in (0, 3, 6):  # the keyframes are denoised in full either way
        assert np.array_equal(np.asarray(shared.frames[index]), np.asarray(alone.frames[index]))


def test_fixed_latent_uses_one_noise_and_seeds_change_frames(tiny_pipe):
    base = pixels(run(tiny_pipe, share=False).frames)
    fixed = pixels(run(tiny_pipe, share=False, fixed_latent=True).frames)
    assert np.array_equal(fixed[0], base[0])  # keyframe 0's own noise
    assert not np.array_equal(fixed[3], base[3])  # keyframe 1 drawn from keyframe 0's noise instead
    other_seed = pixels(run(tiny_pipe, share=False, seed=1).frames)
    assert not np.array_equal(other_seed[0], base[0])


def test_text_interpolation_moves_between_frames(tiny_pipe):
    lerped = pixels(run(tiny_pipe, share=False, fixed_latent=True).frames)
    switched = pixels(run(tiny_pipe, share=False, fixed_latent=True, text_interp="off").frames)
    assert np.array_equal(switched[1], switched[0])  # same noise, same text until halfway: same frame
    assert not np.array_equal(lerped[1], lerped[0])  # interpolated text: the frame moves


@pytest.fixture(scope="module")
def shipped_pipe() -> StableDiffusionPipeline:
    """The trained small model: a random VAE does not keep colours, so only a trained one shows them follow."""
    return StableDiffusionPipeline(load_checkpoint(DEFAULT_CHECKPOINT))


def test_init_image_colours_the_frames(shipped_pipe, tmp_path):
    red = np.array([200, 30, 30])
    image = tmp_path / "init.png"
    Image.fromarray(np.full((80, 100, 3), red, np.uint8)).save(image)  # resized to 64x64
    with_image = run(shipped_pipe, init_image=str(image), strength=0.3)  # only the last 30% of the steps run
    without = run(shipped_pipe)
    assert with_image.unet_steps < without.unet_steps
    distance = {name: np.linalg.norm(pixels(anim.frames).reshape(-1, 3).mean(0) - red)
                for name, anim in (("with", with_image), ("without", without))}  # fmt: skip
    assert distance["with"] < 0.8 * distance["without"], distance  # measured: 140 against 206


def test_feedback_runs_the_last_steps_from_the_previous_frame(tiny_pipe):
    feedback = run(tiny_pipe, feedback=True, strength=0.5)
    assert feedback.unet_steps == 6 + 6 * 3  # frame 0 in full, then each frame the last 3 steps
    assert not np.array_equal(pixels(feedback.frames), pixels(run(tiny_pipe).frames))


def test_max_jump_inserts_frames_until_no_step_is_above_it(tiny_pipe):
    plain = run(tiny_pipe)
    steps = [s.max for s in plain.smoothness]
    limit = min(steps) * 0.9
    refined = run(tiny_pipe, max_jump=limit)
    assert len(refined.frames) > len(plain.frames)
    assert all(s.max <= limit for s in refined.smoothness) or len(refined.frames) == 1000
    assert [s.weight for s in refined.specs if s.weight == 0.0] == [0.0] * 3  # keyframes kept, once each


def test_frame_keys_cover_the_spacing(tiny_pipe):
    """Another spacing is another frame; leading keeps the keys frames were cached under before it could change."""
    keyframes = parse_keyframes(KEYFRAMES)

    def renderer(spacing):
        return FrameRenderer(tiny_pipe, keyframes, GifSettings(**FAST, spacing=spacing), weights_sha256="w")

    keys = {spacing: renderer(spacing).keys.key(FrameSpec(0, 0, 0.0)) for spacing in (None, *SPACINGS)}
    assert keys[None] == keys["linspace"]  # dpmpp_2m's default: the tiny model's config names no spacing
    assert len({keys[spacing] for spacing in SPACINGS}) == len(SPACINGS)
    assert "timesteps" not in renderer("leading").keys.base and "timesteps" in renderer("trailing").keys.base
