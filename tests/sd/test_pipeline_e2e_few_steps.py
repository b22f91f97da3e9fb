"""Few-step sampling and timestep spacing end to end: our pipeline vs diffusers' StableDiffusionPipeline as its
users run it, on small random SD 1.x- and SD 2.x-structured checkpoints (max pixel difference <= 2/255).

- SD 1.5's published scheduler config (no timestep_spacing) with the sampler swapped in by `X.from_config`:
  diffusers' Euler, Euler ancestral and DPM-Solver++ then space their steps "linspace", and so do we.
- A folder whose scheduler config says "trailing" (an EulerDiscreteScheduler, as SD-Turbo's), 1 step, no
  guidance: one conditional UNet pass.
- The SD-Turbo case: an SD 2.x-structured checkpoint, trailing, 1 step, guidance 0, from its folder and from a
  plain single file with --spacing trailing.
- `--sampler lcm` at 1, 2 and 4 steps and `--sampler tcd`, against LCMScheduler / TCDScheduler swapped in with
  `from_config` (the LCM-LoRA recipe), with and without guidance; LCM img2img.
"""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline as DiffusersPipeline
from PIL import Image
from safetensors.torch import save_file

from sd.loading.checkpoint import load_checkpoint
from sd.loading.diffusers_folder import save_diffusers_folder
from sd.loading.original import original_state_dict
from sd.pipeline import StableDiffusionPipeline
from sd.samplers.spacing import TimestepConfig
from tests.sd.samplers.test_parity import SD15_SCHEDULER_CONFIG
from tests.sd.test_pipeline_e2e import (
    NEGATIVE,
    PIXEL_TOLERANCE,
    PROMPT,
    REPO,
    assert_matches_diffusers,
    diffusers_pipeline,
    max_pixel_difference,
)
from tests.tiny_checkpoint import tiny_checkpoint, tiny_sd2_checkpoint

TRAILING = TimestepConfig("trailing", steps_offset=1, set_alpha_to_one=False)
# SD-Turbo's scheduler config (stabilityai/sd-turbo, scheduler/scheduler_config.json), less the schedule itself.
TURBO_SCHEDULER_CONFIG = {
    "_class_name": "EulerDiscreteScheduler",
    "clip_sample": False,
    "interpolation_type": "linear",
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "trailing",
    "timestep_type": "discrete",
    "use_karras_sigmas": False,
}


def with_scheduler_config(folder: Path, config: dict) -> Path:
    """Replace a folder's scheduler config (keeping its schedule), and its class in model_index.json."""
    path = folder / "scheduler" / "scheduler_config.json"
    schedule_keys = ("beta_start", "beta_end", "beta_schedule", "num_train_timesteps", "trained_betas")
    schedule = {k: v for k, v in json.loads(path.read_text()).items() if k in schedule_keys}
    path.write_text(json.dumps(schedule | config, indent=2))
    index = json.loads((folder / "model_index.json").read_text())
    index["scheduler"] = ["diffusers", config["_class_name"]]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder


def cli(checkpoint: Path, out: Path, *args: str, mode: str = "txt2img") -> tuple[list[np.ndarray], dict]:
    """Our CLI's images, and the PNG text of the first."""
    command = [sys.executable, "-m", "sd", mode, PROMPT, "--checkpoint", str(checkpoint), "--out", str(out),
               *args]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    paths = sorted(out.parent.glob(f"{out.stem}*.png"))
    return [np.asarray(Image.open(p).convert("RGB"), dtype=np.int16) for p in paths], Image.open(paths[0]).text


def unet_batches(unet: torch.nn.Module) -> list[int]:
    """Records the batch size of every forward call of `unet` (a forward pre-hook; removed with the module)."""
    batches: list[int] = []
    unet.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    return batches


def as_arrays(images: list[Image.Image]) -> list[np.ndarray]:
    return [np.asarray(im.convert("RGB"), dtype=np.int16) for im in images]


@pytest.fixture(scope="module")
def sd15_folder(tmp_path_factory) -> Path:
    """The tiny model in a folder carrying SD 1.5's scheduler config exactly as published."""
    folder = save_diffusers_folder(tiny_checkpoint(seed=11), tmp_path_factory.mktemp("sd15") / "tiny")
    return with_scheduler_config(folder, SD15_SCHEDULER_CONFIG)


@pytest.mark.parametrize("sampler", ["euler", "euler_a", "dpmpp_2m"])
def test_sd15_config_swapped_with_from_config(sd15_folder, tmp_path, sampler):
    settings = ["--sampler", sampler, "--seed", "5", "--steps", "8", "--guidance", "7.5", "--negative", NEGATIVE,
                "--batch", "2"]  # fmt: skip
    mine, info = cli(sd15_folder, tmp_path / "img.png", *settings)
    assert info["spacing"] == "linspace"
    pipe = diffusers_pipeline(sd15_folder, sampler)
    assert pipe.scheduler.config.timestep_spacing == "linspace"
    theirs = pipe(
        PROMPT, negative_prompt=NEGATIVE, num_inference_steps=8, guidance_scale=7.5, height=64, width=64,
        generator=[torch.Generator().manual_seed(5 + i) for i in range(2)], num_images_per_prompt=2,
    ).images  # fmt: skip
    assert_matches_diffusers(mine, theirs, f"SD 1.5 config, {sampler} (linspace)")
    if sampler == "euler_a":  # the defect this fixes: leading spacing (what every sampler used) is visibly off
        leading, info = cli(sd15_folder, tmp_path / "leading.png", *settings, "--spacing", "leading")
        assert info["spacing"] == "leading"
        print(f"SD 1.5 config, euler_a forced leading: max pixel difference {max_pixel_difference(leading, theirs)}")
        assert max_pixel_difference(leading, theirs) > 10


def test_trailing_folder_one_step_without_guidance(tmp_path):
    checkpoint = replace(tiny_checkpoint(seed=12), timestep_config=TRAILING)
    folder = with_scheduler_config(save_diffusers_folder(checkpoint, tmp_path / "tiny"), TURBO_SCHEDULER_CONFIG)
    ours = StableDiffusionPipeline(load_checkpoint(folder))
    assert ours.checkpoint.timestep_config == TRAILING
    our_calls = unet_batches(ours.checkpoint.unet)
    mine = ours.txt2img(PROMPT, seed=3, steps=1, sampler="euler", guidance=0.0, batch=2, progress=False)
    pipe = DiffusersPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    their_calls = unet_batches(pipe.unet)
    theirs = pipe(PROMPT, num_inference_steps=1, guidance_scale=0.0, height=64, width=64, num_images_per_prompt=2,
                  generator=[torch.Generator().manual_seed(3 + i) for i in range(2)]).images  # fmt: skip
    assert our_calls == their_calls == [2]  # one step, one conditional pass: no classifier-free guidance
    assert pipe.scheduler.timesteps.tolist() == [999.0]
    assert_matches_diffusers(as_arrays(mine), theirs, "trailing folder, euler, 1 step, guidance 0")



def test_a_folder_samples_with_its_scheduler_class_when_no_sampler_is_given(sd15_folder, tmp_path):
    """As `StableDiffusionPipeline.from_pretrained` does: an SD-Turbo-shaped folder (EulerDiscreteScheduler,
    trailing) renders with euler from a bare command, as diffusers' pipeline renders it; the PNG records which
    sampler ran. SD 1.5's PNDMScheduler has no sampler here: the command's default stays."""
    checkpoint = replace(tiny_checkpoint(seed=12), timestep_config=TRAILING)
    folder = with_scheduler_config(save_diffusers_folder(checkpoint, tmp_path / "turbo"), TURBO_SCHEDULER_CONFIG)
    mine, text = cli(folder, tmp_path / "bare.png", "--steps", "4", "--guidance", "0", "--seed", "3")
    assert text["sampler"] == "euler"
    pipe = DiffusersPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(PROMPT, num_inference_steps=4, guidance_scale=0.0, height=64, width=64,
                  generator=[torch.Generator().manual_seed(3)]).images  # fmt: skip
    assert max_pixel_difference(mine, theirs) <= PIXEL_TOLERANCE
    _, text = cli(sd15_folder, tmp_path / "pndm.png", "--steps", "2")
    assert text["sampler"] == "ddim"  # txt2img's own default

@pytest.mark.parametrize("steps", [1, 4])
def test_sd_turbo_case(tmp_path, steps):
    """SD 2.x structure, trailing spacing, guidance 0: from a folder that says so, and from a plain single file
    (which names no spacing) with --spacing trailing."""
    checkpoint = replace(tiny_sd2_checkpoint(seed=21, prediction_type="epsilon"), timestep_config=TRAILING)
    folder = with_scheduler_config(save_diffusers_folder(checkpoint, tmp_path / "turbo"), TURBO_SCHEDULER_CONFIG)
    single_file = tmp_path / "turbo.safetensors"
    save_file(original_state_dict(checkpoint), single_file)  # no metadata: as a downloaded file comes

    pipe = DiffusersPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(PROMPT, num_inference_steps=steps, guidance_scale=0.0, height=64, width=64,
                  generator=[torch.Generator().manual_seed(4)]).images  # fmt: skip
    from_folder = StableDiffusionPipeline(load_checkpoint(folder))
    from_file = StableDiffusionPipeline(load_checkpoint(single_file, prediction_type="epsilon"))
    sampler = from_folder._sampler("euler", steps, 0.0)
    assert sampler.init_noise_sigma == float(pipe.scheduler.init_noise_sigma)  # sigma_max under trailing
    common = dict(seed=4, steps=steps, sampler="euler", guidance=0.0, width=64, height=64, progress=False)
    runs = {
        "folder": from_folder.txt2img(PROMPT, **common),
        "single file + --spacing trailing": from_file.txt2img(PROMPT, spacing="trailing", **common),
    }
    for name, mine in runs.items():
        assert_matches_diffusers(as_arrays(mine), theirs, f"SD-Turbo case ({name}), {steps} step(s)")



@pytest.mark.parametrize(
    "sampler, steps, guidance, eta",
    [("lcm", 1, 1.0, 0.0), ("lcm", 2, 1.0, 0.0), ("lcm", 4, 1.0, 0.0), ("lcm", 4, 1.5, 0.0), ("tcd", 4, 1.0, 0.3)],
)
def test_few_step_samplers_match_diffusers(sd15_folder, tmp_path, sampler, steps, guidance, eta):
    """The LCM-LoRA recipe: `LCMScheduler.from_config(pipe.scheduler.config)`, a few steps, guidance 1 to 2."""
    settings = ["--sampler", sampler, "--seed", "5", "--steps", str(steps), "--guidance", str(guidance),
                "--eta", str(eta), "--negative", NEGATIVE, "--batch", "2"]  # fmt: skip
    mine, info = cli(sd15_folder, tmp_path / "img.png", *settings)
    assert info["sampler"] == sampler and "spacing" not in info  # LCM's and TCD's timesteps follow no spacing rule
    theirs = diffusers_pipeline(sd15_folder, sampler)(
        PROMPT, negative_prompt=NEGATIVE, num_inference_steps=steps, guidance_scale=guidance, eta=eta, height=64,
        width=64, generator=[torch.Generator().manual_seed(5 + i) for i in range(2)], num_images_per_prompt=2,
    ).images  # fmt: skip
    assert_matches_diffusers(mine, theirs, f"{sampler}, {steps} steps, guidance {guidance}, eta {eta}")


def test_lcm_img2img_matches_diffusers(sd15_folder, tmp_path):
    init = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    init.save(tmp_path / "init.png")
    settings = ["--init-image", str(tmp_path / "init.png"), "--sampler", "lcm", "--seed", "9", "--steps", "4",
                "--strength", "0.6", "--guidance", "1"]  # fmt: skip
    mine, _ = cli(sd15_folder, tmp_path / "out.png", *settings, mode="img2img")
    theirs = diffusers_pipeline(sd15_folder, "lcm", img2img=True)(
        PROMPT, image=init, strength=0.6, num_inference_steps=4, guidance_scale=1.0,
        generator=[torch.Generator().manual_seed(9)],
    ).images  # fmt: skip
    assert_matches_diffusers(mine, theirs, "lcm img2img, 4 steps, strength 0.6")


def test_spacing_with_lcm_is_refused(sd15_folder, tmp_path):
    command = [sys.executable, "-m", "sd", "txt2img", "p", "--checkpoint", str(sd15_folder), "--sampler", "lcm",
               "--spacing", "trailing", "--out", str(tmp_path / "x.png")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "picks its timesteps from its own grid" in result.stderr
    assert list(tmp_path.iterdir()) == []
