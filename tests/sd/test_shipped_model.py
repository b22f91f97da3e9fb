"""The small model shipped in weights/: it loads, draws what it is asked, and diffusers renders it identically.

A broken or replaced checkpoint fails here: the attribute classifier (itself tested to be >= 99% accurate
on real renders) must find the prompted attributes in the model's images at least as often as FLOORS say.
"""

import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

from sd.bench.reference import DPMPP_2M_OPTIONS
from sd.eval.adherence import evaluate_adherence
from sd.loading.checkpoint import load_checkpoint
from sd.loading.diffusers_folder import save_diffusers_folder
from sd.paths import DEFAULT_CHECKPOINT
from sd.pipeline import StableDiffusionPipeline as OurPipeline
from tests.tiny_checkpoint import assert_same_weights

# Measured held-in (n=400): colour 98.8%, shape 94.8%, position 100%, background 100% (docs/small-model.md). The floors
# leave room for the spread of 48 samples, so only a real regression trips them.
FLOORS = {"colour": 0.9, "shape": 0.8, "position": 0.9, "background": 0.9}
PROMPT = "a large red circle in the top left on a blue background"


@pytest.fixture(scope="module")
def checkpoint():
    return load_checkpoint(DEFAULT_CHECKPOINT)


def test_shipped_weights_are_small_safetensors():
    assert DEFAULT_CHECKPOINT.suffix == ".safetensors"
    assert DEFAULT_CHECKPOINT.stat().st_size <= 20 * 2**20


@pytest.mark.slow
def test_prompt_adherence_clears_the_floors(checkpoint):
    result = evaluate_adherence(OurPipeline(checkpoint), n_samples=48, seed=123, held_out=False, progress=False)
    print(result["accuracy"])
    for attribute, floor in FLOORS.items():
        assert result["accuracy"][attribute] >= floor, (attribute, result["accuracy"])


def test_export_round_trip_and_diffusers_renders_the_same_image(checkpoint, tmp_path):
    folder = save_diffusers_folder(checkpoint, tmp_path / "tiny-shapes")
    assert_same_weights(checkpoint, load_checkpoint(folder))
    ours = OurPipeline(checkpoint).txt2img(
        PROMPT, "", seed=7, steps=20, sampler="dpmpp_2m", guidance=5.0, progress=False
    )
    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, **DPMPP_2M_OPTIONS)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(PROMPT, num_inference_steps=20, guidance_scale=5.0, height=64, width=64,
                  generator=[torch.Generator().manual_seed(7)]).images  # fmt: skip
    difference = np.abs(np.asarray(ours[0], dtype=np.int16) - np.asarray(theirs[0], dtype=np.int16)).max()
    assert difference <= 2, difference
