"""Our CLI vs diffusers' StableDiffusionPipeline on the same small random SD 1.x-structured checkpoint.

The checkpoint is written as a diffusers folder (for diffusers) and an original single file (for our
CLI), so this also checks that both layouts describe the same model. Same prompt, negative prompt,
seed(s), sampler and steps must give the same pixels.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    LCMScheduler,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionPipeline,
    TCDScheduler,
)
from PIL import Image

from sd.loading.diffusers_folder import save_diffusers_folder
from sd.loading.original import save_original
from tests.tiny_checkpoint import tiny_checkpoint

REPO = Path(__file__).resolve().parents[2]
PIXEL_TOLERANCE = 2  # max |ours - diffusers| per channel, in 0..255 steps
PROMPT, NEGATIVE = "a large red circle in the top left on a blue background", "blurry, green"

SCHEDULERS = {
    "ddpm": (DDPMScheduler, {}),
    "ddim": (DDIMScheduler, {}),
    "euler": (EulerDiscreteScheduler, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
    "dpmpp_2m": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
}
FEW_STEP_SCHEDULERS = {"lcm": (LCMScheduler, {}), "tcd": (TCDScheduler, {})}  # tests/sd/test_pipeline_e2e_few_steps.py


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("model")
    checkpoint = tiny_checkpoint(seed=11)
    return save_original(checkpoint, root / "tiny.safetensors"), save_diffusers_folder(checkpoint, root / "tiny")


def diffusers_pipeline(folder: Path, sampler: str, img2img: bool = False):
    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    scheduler_class, options = (SCHEDULERS | FEW_STEP_SCHEDULERS)[sampler]
    pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config, **options)
    pipe.set_progress_bar_config(disable=True)
    return StableDiffusionImg2ImgPipeline(**pipe.components) if img2img else pipe


def ours(checkpoint: Path, out: Path, *args: str) -> list[np.ndarray]:
    command = [sys.executable, "-m", "sd", *args, PROMPT, "--checkpoint", str(checkpoint), "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    paths = sorted(out.parent.glob(f"{out.stem}*.png"))
    return [np.asarray(Image.open(p).convert("RGB"), dtype=np.int16) for p in paths]


def max_pixel_difference(a: list[np.ndarray], b: list) -> int:
    assert len(a) == len(b)
    return max(int(np.abs(x - np.asarray(y, dtype=np.int16)).max()) for x, y in zip(a, b, strict=True))


def assert_matches_diffusers(mine: list[np.ndarray], theirs: list, what: str) -> None:
    """Our images within PIXEL_TOLERANCE of diffusers'; the difference is printed (pytest -s), labelled `what`."""
    difference = max_pixel_difference(mine, theirs)
    print(f"{what}: max pixel difference {difference}/255")
    assert difference <= PIXEL_TOLERANCE


@pytest.mark.parametrize("sampler", list(SCHEDULERS))
def test_txt2img_matches_diffusers(model, tmp_path, sampler):
    single_file, folder = model
    settings = ["--seed", "5", "--steps", "6", "--guidance", "7.5", "--negative", NEGATIVE, "--batch", "2"]
    mine = ours(single_file, tmp_path / "img.png", "txt2img", "--sampler", sampler, *settings)
    generators = [torch.Generator().manual_seed(5 + i) for i in range(2)]
    theirs = diffusers_pipeline(folder, sampler)(
        PROMPT, negative_prompt=NEGATIVE, num_inference_steps=6, guidance_scale=7.5, generator=generators,
        height=64, width=64, num_images_per_prompt=2,
    ).images  # fmt: skip
    assert_matches_diffusers(mine, theirs, f"{sampler}")


@pytest.mark.parametrize("sampler", ["ddim", "euler_a"])
def test_img2img_matches_diffusers(model, tmp_path, sampler):
    single_file, folder = model
    init = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    init.save(tmp_path / "init.png")
    settings = ["--seed", "9", "--steps", "10", "--strength", "0.6", "--negative", NEGATIVE]
    mine = ours(single_file, tmp_path / "out.png", "img2img", "--init-image", str(tmp_path / "init.png"),
                "--sampler", sampler, *settings)  # fmt: skip
    theirs = diffusers_pipeline(folder, sampler, img2img=True)(
        PROMPT, image=init, negative_prompt=NEGATIVE, strength=0.6, num_inference_steps=10, guidance_scale=7.5,
        generator=[torch.Generator().manual_seed(9)],
    ).images  # fmt: skip
    assert_matches_diffusers(mine, theirs, f"img2img {sampler}")


def test_same_command_twice_is_byte_identical_and_batch_invariant(model, tmp_path):
    single_file, _ = model
    args = ["txt2img", "--sampler", "euler_a", "--steps", "5", "--seed", "3"]
    ours(single_file, tmp_path / "a" / "x.png", *args, "--batch", "3")
    ours(single_file, tmp_path / "b" / "x.png", *args, "--batch", "3")
    first = sorted((tmp_path / "a").glob("*.png"))
    assert [p.name for p in first] == ["x_0000.png", "x_0001.png", "x_0002.png"]
    assert all(p.read_bytes() == (tmp_path / "b" / p.name).read_bytes() for p in first)
    # Image 1 of a batch started at seed 3 is the image of seed 4 alone.
    alone = ours(single_file, tmp_path / "c" / "x.png", *args[:-1], "4")
    batched = np.asarray(Image.open(first[1]).convert("RGB"), dtype=np.int16)
    assert int(np.abs(alone[0] - batched).max()) <= 1
    info = Image.open(first[1]).text
    assert info["seed"] == "4" and info["prompt"] == PROMPT and info["sampler"] == "euler_a"
    assert info["checkpoint"] == "tiny.safetensors" and info["size"] == "64x64" and info["steps"] == "5"


@pytest.mark.parametrize(
    "args, message",
    [
        (["txt2img", "p", "--sampler", "plms"], "invalid choice: 'plms'"),
        (["img2img", "p", "--init-image", "x.png", "--strength", "1.5"], "--strength 1.5 is outside [0, 1]"),
        (["txt2img", "p", "--width", "100"], "width 100 is not a positive multiple of 8"),
        (["img2img", "p", "--init-image", "/nonexistent.png"], "no such image file"),
        (["img2img", "p", "--init-image", "README.md"], "not a readable image"),
    ],
)
def test_user_errors_are_one_line_with_no_partial_file(model, tmp_path, args, message):
    single_file, _ = model
    out = tmp_path / "o.png"
    command = [sys.executable, "-m", "sd", *args, "--checkpoint", str(single_file), "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_never_overwritten_silently(model, tmp_path):
    single_file, _ = model
    out = tmp_path / "o.png"
    out.write_bytes(b"precious")
    command = [sys.executable, "-m", "sd", "txt2img", "p", "--checkpoint", str(single_file), "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "already exists" in result.stderr
    assert out.read_bytes() == b"precious"


@pytest.mark.parametrize("bf16_compute", ["native", "fp32"])
def test_bf16_pipeline_runs_and_stays_close_to_fp32(model, bf16_compute):
    """bf16 end to end (samplers integrate in float32; the models run in bf16, or in fp32 on bf16 weights)."""
    from sd.loading.checkpoint import load_checkpoint
    from sd.pipeline import StableDiffusionPipeline

    single_file, _ = model
    images = {
        dtype: StableDiffusionPipeline(load_checkpoint(single_file, dtype), bf16_compute=bf16_compute).txt2img(
            PROMPT, NEGATIVE, seed=1, steps=4, sampler="dpmpp_2m", progress=False
        )[0]
        for dtype in ("fp32", "bf16")
    }
    fp32, bf16 = (np.asarray(images[d], dtype=np.float64) for d in ("fp32", "bf16"))
    assert bf16.shape == fp32.shape == (64, 64, 3)
    assert np.abs(bf16 - fp32).mean() < 8  # same picture up to bf16 rounding (mean of 0..255 steps)
