"""GIFs with LCM (the distilled models' sampler), which injects fresh noise between its steps: keyframes are
txt2img's images (to the bit when guided), and an in-between's injected noise is the slerp of its keyframes'
own, as its starting noise is, so neighbouring frames do not draw unrelated noise (flicker)."""

import numpy as np
import pytest
import torch

import sd.samplers.lcm
from sd.gif.animate import animate
from sd.gif.interpolation import slerp
from sd.gif.keyframes import parse_keyframes
from sd.gif.settings import GifSettings
from sd.loading.checkpoint import load_checkpoint
from sd.paths import DEFAULT_CHECKPOINT
from sd.pipeline import StableDiffusionPipeline

KEYFRAMES = (
    "0: a large red circle in the center on a blue background\n"
    "4: a large yellow star in the center on a black background"
)
LCM = dict(sampler="lcm", steps=4, share=False, frame_spacing="planned", seed=7, batch=5)


@pytest.fixture(scope="module")
def pipe() -> StableDiffusionPipeline:
    return StableDiffusionPipeline(load_checkpoint(DEFAULT_CHECKPOINT))  # the shipped model: what users animate


@pytest.mark.parametrize("guidance", [1.0, 1.5])
def test_lcm_keyframes_are_the_txt2img_images_of_their_prompts_and_seeds(pipe, guidance):
    settings = GifSettings(guidance=guidance, **LCM)
    anim = animate(KEYFRAMES, settings=settings, pipe=pipe, cache_dir=None, progress=False)
    for keyframe in parse_keyframes(KEYFRAMES):
        expected = pipe.txt2img(keyframe.prompt, seed=7 + keyframe.frame, steps=4, sampler="lcm", guidance=guidance,
                                progress=False)[0]  # fmt: skip
        difference = np.abs(np.asarray(anim.frames[keyframe.frame], int) - np.asarray(expected, int)).max()
        # Unguided, txt2img runs one image as a UNet batch of one, which oneDNN rounds differently at 2 threads
        # (measured: 1/255 on one keyframe); the renderer runs it as two rows, for batch invariance (renderer.py).
        assert difference <= (0 if guidance > 1 else 1), (keyframe, difference)


def test_lcm_injected_noise_of_an_in_between_is_the_slerp_of_its_keyframes(pipe, monkeypatch):
    drawn = []  # (B, 4, h, w) per LCM step that injects noise, in order

    original = sd.samplers.lcm.randn_tensor

    def recording(*args, **kwargs):
        noise = original(*args, **kwargs)
        drawn.append(noise.clone())
        return noise

    monkeypatch.setattr(sd.samplers.lcm, "randn_tensor", recording)
    anim = animate(KEYFRAMES, settings=GifSettings(guidance=1.0, **LCM), pipe=pipe, cache_dir=None, progress=False)
    weights = [spec.weight for spec in anim.specs]  # 0, w1, w2, w3, 0 (keyframe 1)
    assert len(drawn) == 3 and all(d.shape[0] == 5 for d in drawn)  # 4 steps: noise after the first 3; one batch
    for step in drawn:
        a, b = step[0:1], step[4:5]  # the keyframes' own draws
        assert not torch.allclose(a, b)
        for row in (1, 2, 3):
            torch.testing.assert_close(step[row : row + 1], slerp(a, b, weights[row]), rtol=0, atol=1e-6)
