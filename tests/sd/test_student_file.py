"""A UNet-only distilled student (sd/loading/student.py) loads as its base model with its own UNet, through
--checkpoint and --model, and its sampler, steps and guidance apply wherever the user names none.

A tiny stand-in (random weights) plays the shipped students, so this runs whether or not they are committed.
"""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from sd.cli.main import main
from sd.errors import UserError
from sd.loading.checkpoint import load_checkpoint
from sd.loading.checkpoint_types import SamplingDefaults
from sd.loading.original import save_original
from sd.loading.student import save_student, student_info
from sd.paths import SHIPPED_MODELS
from sd.pipeline import StableDiffusionPipeline
from sd.ui import models
from tests.random_weights import randomize_
from tests.tiny_checkpoint import tiny_checkpoint
from unet.config import TINY_UNET
from unet.model import UNetModel

FEW_STEPS = SamplingDefaults("lcm", 3, 1.0, snap=0.5, rounds=3)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("student")
    base = save_original(tiny_checkpoint(seed=3), folder / "base.safetensors")
    unet = randomize_(UNetModel(TINY_UNET), seed=9)
    student = save_student(unet, folder / "student.safetensors", base, FEW_STEPS, {"stage": 1})
    return {"base": base, "student": student, "unet": unet}


@pytest.fixture
def shipped(files, monkeypatch):
    """The stand-in as `--model tiny-shapes-distilled` (and in the UI)."""
    monkeypatch.setitem(SHIPPED_MODELS, "tiny-shapes-distilled", files["student"])  # the UI reads it too


def test_the_student_is_its_base_model_with_its_unet(files):
    student, base = load_checkpoint(files["student"]), load_checkpoint(files["base"])
    assert student.defaults == FEW_STEPS and base.defaults is None and student.name == "student.safetensors"
    for part in ("text_encoder", "vae"):
        for key, value in getattr(base, part).state_dict().items():
            assert torch.equal(getattr(student, part).state_dict()[key], value), (part, key)
    for key, value in files["unet"].state_dict().items():
        assert torch.equal(student.unet.state_dict()[key], value.half().float()), key  # stored in fp16
    assert student_info(files["base"]) is None and student_info(files["student"]).recipe == {"stage": 1}
    assert files["student"].stat().st_size < 0.6 * files["base"].stat().st_size  # the UNet alone


def test_another_or_a_missing_base_is_one_error_line(files, tmp_path):
    moved = tmp_path / "student.safetensors"
    moved.write_bytes(files["student"].read_bytes())
    with pytest.raises(UserError, match="base model base.safetensors is neither beside it nor in"):
        load_checkpoint(moved)
    save_original(tiny_checkpoint(seed=4), tmp_path / "base.safetensors")  # same name, other weights
    with pytest.raises(UserError, match="was distilled from another base.safetensors"):
        load_checkpoint(moved)


def png_settings(path) -> dict:
    return Image.open(path).text


def test_txt2img_uses_the_model_s_own_sampling_unless_told(files, shipped, tmp_path):
    prompt = ["txt2img", "a red circle", "--model", "tiny-shapes-distilled", "--seed", "4"]
    assert main([*prompt, "--out", str(tmp_path / "own.png")]) == 0
    own = png_settings(tmp_path / "own.png")
    assert (own["sampler"], own["steps"], own["guidance"]) == ("lcm", "3", "1.0")
    assert main([*prompt, "--steps", "1", "--out", str(tmp_path / "one.png")]) == 0
    one = png_settings(tmp_path / "one.png")
    assert (one["sampler"], one["steps"], one["guidance"]) == ("lcm", "1", "1.0")
    api = StableDiffusionPipeline(load_checkpoint(files["student"])).txt2img(
        "a red circle", seed=4, steps=1, sampler="lcm", guidance=1.0, progress=False
    )[0]  # fmt: skip
    assert np.array_equal(np.asarray(api), np.asarray(Image.open(tmp_path / "one.png")))
    assert main([*prompt, "--sampler", "ddim", "--steps", "2", "--out", str(tmp_path / "ddim.png")]) == 0
    assert png_settings(tmp_path / "ddim.png")["guidance"] == "1.0"  # still the model's: it has no CFG
    assert main(["txt2img", "a red circle", "--checkpoint", str(files["base"]), "--steps", "1",
                 "--out", str(tmp_path / "base.png")]) == 0  # fmt: skip
    base = png_settings(tmp_path / "base.png")
    assert (base["sampler"], base["guidance"]) == ("ddim", "7.5")  # a model without its own: the command's


def test_img2img_gif_and_eval_take_the_student(files, shipped, tmp_path):
    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "init.png")
    assert main(["img2img", "a red circle", "--model", "tiny-shapes-distilled", "--init-image",
                 str(tmp_path / "init.png"), "--strength", "0.7", "--out", str(tmp_path / "i2i.png")]) == 0  # fmt: skip
    assert png_settings(tmp_path / "i2i.png")["sampler"] == "lcm"

    out = tmp_path / "anim.gif"
    assert main(["gif", "0: a red circle", "4: a blue square", "--model", "tiny-shapes-distilled", "--out", str(out),
                 "--no-cache", "--quiet", "--batch", "2"]) == 0  # fmt: skip
    settings = json.loads((tmp_path / "anim.gif.json").read_text())["settings"]
    assert (settings["sampler"], settings["steps"], settings["guidance"]) == ("lcm", 3, 1.0)
    assert (settings["snap"], settings["rounds"]) == (0.5, 3)  # its own even spacing...
    assert main(["gif", "0: a red circle", "4: a blue square", "--model", "tiny-shapes-distilled", "--out",
                 str(tmp_path / "told.gif"), "--no-cache", "--quiet", "--snap", "0"]) == 0  # fmt: skip
    told = json.loads((tmp_path / "told.gif.json").read_text())["settings"]
    assert (told["snap"], told["rounds"]) == (0.0, 3)  # ...except what the user gives
    again = tmp_path / "again.gif"  # the same frames whatever the batch: LCM's step noise is shared by all frames
    assert main(["gif", "0: a red circle", "4: a blue square", "--model", "tiny-shapes-distilled", "--out",
                 str(again), "--no-cache", "--quiet"]) == 0  # fmt: skip
    assert again.read_bytes() == out.read_bytes()

    assert main(["eval", "--model", "tiny-shapes-distilled", "--samples", "2", "--held-out-samples", "1",
                 "--out", str(tmp_path / "eval")]) == 0  # fmt: skip
    report = json.loads((tmp_path / "eval" / "adherence.json").read_text())["settings"]
    assert (report["sampler"], report["steps"], report["guidance"]) == ("lcm", 3, 1.0)


def test_the_ui_offers_the_student_with_its_sampling(files, shipped):
    assert "tiny-shapes-distilled" in models.model_choices()
    assert models.checkpoint_for("tiny-shapes-distilled", None) == files["student"]
    assert models.sampling_for("tiny-shapes-distilled", None) == ("lcm", 3, 1.0)
    assert models.sampling_for(models.EMBEDDED, None) == ("dpmpp_2m", 20, 5.0)
