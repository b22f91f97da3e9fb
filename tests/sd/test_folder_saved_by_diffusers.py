"""A diffusers folder as today's libraries write it loads here and renders what diffusers renders from it.

`StableDiffusionPipeline.save_pretrained` with transformers 5 writes a text encoder built in memory without
the `text_model.` key level (one loaded from a file is saved back with the file's keys), and the tokenizer as
tokenizer.json alone (no vocab.json / merges.txt). The pipeline is diffusers' and transformers' modules built in
memory around a small random SD 1.x-structured checkpoint (sd.bench.reference; no download).
"""

import diffusers
import torch
from diffusers import StableDiffusionPipeline
from safetensors import safe_open

from sd.bench.reference import reference_pipeline
from sd.loading.checkpoint import load_checkpoint
from tests.sd.test_pipeline_e2e import NEGATIVE, PROMPT, assert_matches_diffusers, ours
from tests.tiny_checkpoint import assert_same_weights, tiny_checkpoint


def test_a_folder_saved_by_diffusers_loads_and_renders_as_diffusers(tmp_path):
    checkpoint = tiny_checkpoint(seed=11)
    folder = tmp_path / "saved_by_diffusers"
    reference_pipeline(checkpoint, "DDIMScheduler").save_pretrained(folder)
    assert sorted(p.name for p in (folder / "tokenizer").iterdir()) == ["tokenizer.json", "tokenizer_config.json"]
    with safe_open(folder / "text_encoder" / "model.safetensors", "pt") as weights:
        assert not any(key.startswith("text_model.") for key in weights.keys())  # noqa: SIM118 (not a dict)

    loaded = load_checkpoint(folder)
    assert_same_weights(loaded, checkpoint)
    assert loaded.tokenizer.encoder == checkpoint.tokenizer.encoder
    assert loaded.tokenizer.merges == checkpoint.tokenizer.merges

    settings = ["--seed", "5", "--steps", "6", "--guidance", "7.5", "--negative", NEGATIVE, "--batch", "2"]
    mine = ours(folder, tmp_path / "img.png", "txt2img", "--sampler", "ddim", *settings)
    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe.scheduler).__name__ == "DDIMScheduler"
    theirs = pipe(
        PROMPT, negative_prompt=NEGATIVE, num_inference_steps=6, guidance_scale=7.5, height=64, width=64,
        generator=[torch.Generator().manual_seed(5 + i) for i in range(2)], num_images_per_prompt=2,
    ).images  # fmt: skip
    assert_matches_diffusers(mine, theirs, f"folder saved by diffusers {diffusers.__version__}")
