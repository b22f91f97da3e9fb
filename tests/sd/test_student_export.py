"""`python -m sd convert STUDENT FOLDER` writes a diffusers folder with an LCMScheduler, which loads back as the
same model and which diffusers' StableDiffusionPipeline renders as we do (LCM steps, guidance 1: no CFG): for a
random-weights student and for the shipped tiny-shapes-distilled. (mobile-tiny-distilled has no diffusers layout:
its UNet has none.)"""

import json

import numpy as np
import pytest
import torch
from diffusers import LCMScheduler, StableDiffusionPipeline
from PIL import Image

from sd.cli.main import main
from sd.loading.checkpoint import load_checkpoint
from sd.loading.checkpoint_types import SamplingDefaults
from sd.loading.original import save_original
from sd.loading.student import save_student
from sd.paths import SHIPPED_MODELS
from tests.random_weights import randomize_
from tests.tiny_checkpoint import tiny_checkpoint
from unet.config import TINY_UNET
from unet.model import UNetModel

PIXEL_TOLERANCE = 2  # max |ours - diffusers| per channel, in 0..255 steps
PROMPT = "a large red circle in the top left on a blue background"


@pytest.fixture(scope="module", params=["random", "shipped"])
def exported(tmp_path_factory, request):
    """A random-weights student of a random tiny base, and the shipped tiny-shapes-distilled, each exported."""
    folder = tmp_path_factory.mktemp("export")
    if request.param == "shipped":
        student = SHIPPED_MODELS["tiny-shapes-distilled"]
    else:
        base = save_original(tiny_checkpoint(seed=5), folder / "base.safetensors")
        unet = randomize_(UNetModel(TINY_UNET), seed=6)
        student = save_student(unet, folder / "student.safetensors", base, SamplingDefaults("lcm", 4, 1.0), {})
    assert main(["convert", str(student), str(folder / "diffusers")]) == 0
    return student, folder / "diffusers"


def test_the_export_has_an_lcm_scheduler_and_loads_back(exported):
    student, folder = exported
    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert config["_class_name"] == "LCMScheduler" and config["original_inference_steps"] == 50
    assert json.loads((folder / "model_index.json").read_text())["scheduler"] == ["diffusers", "LCMScheduler"]
    ours, back = load_checkpoint(student), load_checkpoint(folder)
    for part in ("unet", "vae", "text_encoder"):
        theirs = getattr(back, part).state_dict()
        for key, value in getattr(ours, part).state_dict().items():
            assert torch.equal(theirs[key], value), (part, key)


@pytest.mark.parametrize("steps", [1, 4])
def test_diffusers_renders_the_exported_student_as_we_do(exported, tmp_path, steps):
    student, folder = exported
    out = tmp_path / "ours.png"
    assert main(["txt2img", PROMPT, "--checkpoint", str(student), "--steps", str(steps), "--seed", "5", "--batch",
                 "2", "--out", str(out)]) == 0  # fmt: skip
    ours = [np.asarray(Image.open(tmp_path / f"ours_{i:04d}.png").convert("RGB"), dtype=np.int16) for i in range(2)]
    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    assert isinstance(pipe.scheduler, LCMScheduler)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(PROMPT, num_inference_steps=steps, guidance_scale=1.0, height=64, width=64, num_images_per_prompt=2,
                  generator=[torch.Generator().manual_seed(5 + i) for i in range(2)]).images  # fmt: skip
    difference = max(int(np.abs(a - np.asarray(b, dtype=np.int16)).max()) for a, b in zip(ours, theirs, strict=True))
    print(f"{steps} steps: max pixel difference {difference}")
    assert difference <= PIXEL_TOLERANCE
