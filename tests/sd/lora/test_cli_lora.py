"""`--lora FILE[:SCALE]` on txt2img, img2img and gif: it changes the image as the API does, stacks, is
recorded (PNG text, GIF sidecar and frame keys), and a LoRA for another model is one error line."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sd.cli.main import main
from sd.lora.adapter import load_lora
from sd.lora.stack import applied_loras
from sd.pipeline import StableDiffusionPipeline
from tests.sd.gif.conftest import KEYFRAMES
from tests.sd.lora.random_lora import random_lora, write_diffusers, write_kohya
from tests.tiny_checkpoint import tiny_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from sd.loading.original import save_original

    folder = tmp_path_factory.mktemp("lora")
    checkpoint = tiny_checkpoint()
    return {
        "model": save_original(checkpoint, folder / "tiny.safetensors"),
        "a": write_diffusers(checkpoint, random_lora(checkpoint, seed=1, size=1.0), folder / "a.safetensors"),
        "b": write_kohya(checkpoint, random_lora(checkpoint, seed=2, size=1.0), folder / "b.safetensors"),
    }


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.int16)


def test_txt2img_with_stacked_loras_matches_the_api(files, tmp_path):
    common = ["txt2img", "a red circle", "--checkpoint", str(files["model"]), "--steps", "3", "--seed", "2"]
    assert main([*common, "--out", str(tmp_path / "plain.png")]) == 0
    stacked = ["--lora", f"{files['a']}:0.8", "--lora", str(files["b"])]
    assert main([*common, "--out", str(tmp_path / "lora.png"), *stacked]) == 0
    assert Image.open(tmp_path / "lora.png").text["lora"] == "a.safetensors:0.8, b.safetensors:1"
    assert np.abs(pixels(tmp_path / "lora.png") - pixels(tmp_path / "plain.png")).max() > 10

    checkpoint = tiny_checkpoint()
    loras = [(load_lora(files["a"], checkpoint), 0.8), (load_lora(files["b"], checkpoint), 1.0)]
    with applied_loras(checkpoint, loras, merge=False):  # runtime: the CLI merges; same image within 1/255
        api = StableDiffusionPipeline(checkpoint).txt2img("a red circle", seed=2, steps=3, progress=False)[0]
    assert np.abs(np.asarray(api, dtype=np.int16) - pixels(tmp_path / "lora.png")).max() <= 1


def test_img2img_takes_a_lora(files, tmp_path):
    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "init.png")
    common = ["img2img", "a red circle", "--checkpoint", str(files["model"]), "--steps", "4",
              "--init-image", str(tmp_path / "init.png")]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "plain.png")]) == 0
    assert main([*common, "--out", str(tmp_path / "lora.png"), "--lora", f"{files['a']}:1.5"]) == 0
    assert np.abs(pixels(tmp_path / "lora.png") - pixels(tmp_path / "plain.png")).max() > 10


def test_a_lora_for_another_model_is_one_line_naming_the_key(files, tmp_path, capsys):
    other = tmp_path / "wide.safetensors"
    key = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    from safetensors.torch import save_file

    save_file({f"{key}.lora_down.weight": torch.zeros(4, 320), f"{key}.lora_up.weight": torch.zeros(320, 4)}, other)
    capsys.readouterr()
    assert main(["txt2img", "x", "--checkpoint", str(files["model"]), "--steps", "1", "--out", str(tmp_path / "x.png"),
                 "--lora", str(other)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert f"{key}.lora_down.weight" in err and "first mismatching key" in err
    assert not (tmp_path / "x.png").exists()


def test_gif_records_its_loras_and_reproduces_from_the_sidecar(files, tmp_path, capsys):
    keyframes = tmp_path / "keys.txt"
    keyframes.write_text(KEYFRAMES)
    cache = tmp_path / "cache"
    common = ["gif", "--keyframes", str(keyframes), "--checkpoint", str(files["model"]), "--steps", "3",
              "--cache-dir", str(cache), "--quiet"]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "plain.gif")]) == 0
    assert main([*common, "--out", str(tmp_path / "lora.gif"), "--lora", f"{files['a']}:0.5"]) == 0
    plain = json.loads((tmp_path / "plain.gif.json").read_text())
    record = json.loads((tmp_path / "lora.gif.json").read_text())
    (lora,) = record["settings"]["loras"]
    assert lora["scale"] == 0.5 and len(lora["sha256"]) == 64 and lora["path"] == str(files["a"])
    assert record["checkpoint"]["weights_sha256"] == plain["checkpoint"]["weights_sha256"]  # the checkpoint's own
    assert not {f["key"] for f in record["frames"]} & {f["key"] for f in plain["frames"]}  # no stale cache hits
    assert (tmp_path / "lora.gif").read_bytes() != (tmp_path / "plain.gif").read_bytes()

    again = tmp_path / "again.gif"
    assert main(["gif", "--from-json", str(tmp_path / "lora.gif.json"), "--out", str(again), "--no-cache",
                 "--checkpoint", str(files["model"]), "--quiet"]) == 0  # fmt: skip
    assert again.read_bytes() == (tmp_path / "lora.gif").read_bytes()

    Path(files["a"]).with_name("changed.safetensors").write_bytes(Path(files["b"]).read_bytes())
    record["settings"]["loras"][0]["path"] = str(Path(files["a"]).with_name("changed.safetensors"))
    (tmp_path / "edited.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["gif", "--from-json", str(tmp_path / "edited.json"), "--out", str(tmp_path / "x.gif"),
                 "--checkpoint", str(files["model"]), "--quiet"]) == 2  # fmt: skip
    assert "not the LoRA this run was made with" in capsys.readouterr().err
