"""Our pipeline vs diffusers' StableDiffusionPipeline on a small random SD 2.x-structured checkpoint, for both
things an SD 2.x UNet may predict: epsilon (SD 2.x-base, 512x512) and v (SD 2.x, 768x768).

Ours loads the original single file as a third-party SD 2.x file comes: OpenCLIP text keys with the unused
last layer, no stored configs (read off the shapes), no stored prediction type (v, unless the flag says
epsilon). diffusers loads the diffusers folder we export from the same weights (the text encoder without its
unused layer; the scheduler config's prediction_type). Same prompt, seeds, sampler and steps must give the
same pixels.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from sd.gif.animate import animate
from sd.gif.settings import GifSettings
from sd.loading.checkpoint import load_checkpoint
from sd.loading.diffusers_folder import save_diffusers_folder
from sd.loading.original import original_state_dict
from sd.pipeline import StableDiffusionPipeline
from tests.sd.test_pipeline_e2e import (
    NEGATIVE,
    PROMPT,
    REPO,
    SCHEDULERS,
    assert_matches_diffusers,
    diffusers_pipeline,
    max_pixel_difference,
)
from tests.tiny_checkpoint import tiny_sd2_checkpoint

PREDICTION_TYPES = ["epsilon", "v_prediction"]
FLAG = {"epsilon": "epsilon", "v_prediction": None}  # v is what an SD 2.x single file is taken to predict


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(single file without configs, {prediction type: diffusers folder}) of one set of random weights."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("sd2")
    single_file = root / "tiny-sd2.safetensors"
    save_file(original_state_dict(tiny_sd2_checkpoint(seed=21)), single_file)  # no metadata
    folders = {
        kind: save_diffusers_folder(tiny_sd2_checkpoint(seed=21, prediction_type=kind), root / kind)
        for kind in PREDICTION_TYPES
    }
    return single_file, folders


@pytest.fixture(scope="module")
def ours(model):
    single_file, _ = model
    pipes = {kind: StableDiffusionPipeline(load_checkpoint(single_file, prediction_type=FLAG[kind])) for kind in FLAG}
    assert all(pipe.checkpoint.prediction_type == kind for kind, pipe in pipes.items())
    assert all(pipe.checkpoint.family == "SD 2.x" for pipe in pipes.values())
    return pipes


def as_arrays(images: list[Image.Image]) -> list[np.ndarray]:
    return [np.asarray(im.convert("RGB"), dtype=np.int16) for im in images]


@pytest.mark.parametrize("kind", PREDICTION_TYPES)
@pytest.mark.parametrize("sampler", list(SCHEDULERS))
def test_txt2img_matches_diffusers(model, ours, kind, sampler):
    _, folders = model
    mine = ours[kind].txt2img(PROMPT, NEGATIVE, seed=5, steps=6, sampler=sampler, guidance=7.5, width=64, height=64,
                              batch=2, progress=False)  # fmt: skip
    theirs = diffusers_pipeline(folders[kind], sampler)(
        PROMPT, negative_prompt=NEGATIVE, num_inference_steps=6, guidance_scale=7.5, height=64, width=64,
        generator=[torch.Generator().manual_seed(5 + i) for i in range(2)], num_images_per_prompt=2,
    ).images  # fmt: skip
    assert_matches_diffusers(as_arrays(mine), theirs, f"SD 2.x {kind} {sampler}")


@pytest.mark.parametrize("kind", PREDICTION_TYPES)
def test_img2img_matches_diffusers(model, ours, kind):
    _, folders = model
    init = Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    mine = ours[kind].img2img(PROMPT, init, NEGATIVE, strength=0.6, seed=9, steps=10, sampler="ddim", progress=False)
    theirs = diffusers_pipeline(folders[kind], "ddim", img2img=True)(
        PROMPT, image=init, negative_prompt=NEGATIVE, strength=0.6, num_inference_steps=10, guidance_scale=7.5,
        generator=[torch.Generator().manual_seed(9)],
    ).images  # fmt: skip
    assert_matches_diffusers(as_arrays(mine), theirs, f"SD 2.x {kind} img2img ddim")


def test_cli_prediction_type_flag(model, ours, tmp_path):
    """`--prediction-type epsilon` on the command line gives the epsilon model's image, and says so in the PNG."""
    single_file, _ = model
    out = tmp_path / "eps.png"
    command = [sys.executable, "-m", "sd", "txt2img", PROMPT, "--checkpoint", str(single_file), "--out", str(out),
               "--prediction-type", "epsilon", "--steps", "4", "--width", "64", "--height", "64",
               "--seed", "2"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    image = Image.open(out)
    assert image.text["prediction_type"] == "epsilon"
    expected = {kind: ours[kind].txt2img(PROMPT, seed=2, steps=4, width=64, height=64, progress=False) for kind in FLAG}
    assert max_pixel_difference(as_arrays([image]), expected["epsilon"]) == 0
    assert max_pixel_difference(as_arrays([image]), expected["v_prediction"]) > 10


def test_gif_keyframe_is_the_txt2img_image_of_its_prediction_type(model, ours):
    single_file, _ = model
    settings = GifSettings(steps=3, sampler="ddim", width=64, height=64)
    result = animate("0: a red circle\n2: a blue square", None, settings, checkpoint=single_file,
                     prediction_type="epsilon", cache_dir=None, progress=False)  # fmt: skip
    assert result.record["checkpoint"]["prediction_type"] == "epsilon"
    keyframe = ours["epsilon"].txt2img("a red circle", seed=0, steps=3, sampler="ddim", guidance=settings.guidance,
                                       width=64, height=64, progress=False)  # fmt: skip
    assert max_pixel_difference(as_arrays(result.frames[:1]), keyframe) == 0
