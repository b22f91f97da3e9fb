"""A random LoRA loaded by us and by diffusers' `load_lora_weights` gives the same image.

Both formats, the text encoder included, at scale 0.7 (diffusers: `set_adapters(..., [0.7])`), on the tiny
random checkpoint and on the shipped model. diffusers runs our weights (sd.bench.reference) and reads the
LoRA from the local file. Tolerance: 2/255 per pixel (measured: 0 to 1). diffusers 0.42 cannot convert
kohya files that use the original UNet names (lora_unet_input_blocks_...), and drops the text encoder's
q_proj of kohya files that also adapt its MLP, so the kohya case is attention-only; test_formats shows every
layout reads to the same layers.
"""

import numpy as np
import pytest
import torch

from sd.bench.reference import reference_pipeline
from sd.loading.checkpoint import load_checkpoint
from sd.lora.adapter import load_lora
from sd.lora.stack import LoraStack
from sd.paths import DEFAULT_CHECKPOINT
from sd.pipeline import StableDiffusionPipeline
from tests.sd.lora.random_lora import ATTENTION, LCM_LORA, random_lora, write_diffusers, write_kohya
from tests.sd.lora.test_formats import KINDS
from tests.tiny_checkpoint import tiny_checkpoint

PROMPT = "a large red circle in the top left on a blue background"
SCALE = 0.7
CHECKPOINTS = {"tiny": tiny_checkpoint, "shipped": lambda: load_checkpoint(DEFAULT_CHECKPOINT)}


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.mark.parametrize("layout", ["diffusers", "kohya"])
@pytest.mark.parametrize("model", ["tiny", "shipped"])
def test_same_image_as_diffusers_load_lora_weights(model, layout, tmp_path):
    checkpoint = CHECKPOINTS[model]()
    path = tmp_path / "lora.safetensors"
    if layout == "diffusers":
        layers = random_lora(checkpoint, seed=3, size=1.0, kinds=KINDS + ("k_proj", "v_proj", "fc2"))
        write_diffusers(checkpoint, layers, path)
    else:
        write_kohya(checkpoint, random_lora(checkpoint, seed=3, size=1.0, kinds=ATTENTION), path)
    settings = dict(seed=5, steps=10, guidance=5.0)

    ours = StableDiffusionPipeline(checkpoint)
    base = pixels(ours.txt2img(PROMPT, progress=False, **settings)[0])
    stack = LoraStack(checkpoint)
    lora = load_lora(path, checkpoint)
    stack.add(lora, SCALE)
    runtime = pixels(ours.txt2img(PROMPT, progress=False, **settings)[0])
    stack.merge()
    merged = pixels(ours.txt2img(PROMPT, progress=False, **settings)[0])
    stack.clear()

    pipe = reference_pipeline(checkpoint)
    pipe.load_lora_weights(str(path), adapter_name="random")
    pipe.set_adapters(["random"], [SCALE])
    adapted = {name for name, m in pipe.text_encoder.named_modules() if hasattr(m, "lora_A") and m.lora_A}
    assert len(adapted) == sum(name.startswith("text_encoder.") for name in lora.layers)  # none dropped
    theirs = pixels(pipe(PROMPT, num_inference_steps=10, guidance_scale=5.0, height=64, width=64,
                         generator=[torch.Generator().manual_seed(5)]).images[0])  # fmt: skip

    print(f"{model} {layout}: max |ours - diffusers| runtime {np.abs(runtime - theirs).max()}, "
          f"merged {np.abs(merged - theirs).max()}; the LoRA moves pixels by up to {np.abs(runtime - base).max()}")
    assert np.abs(runtime - base).max() > 20  # the LoRA matters
    assert np.abs(runtime - theirs).max() <= 2
    assert np.abs(merged - theirs).max() <= 2


@pytest.mark.parametrize("alpha", [True, False], ids=["alpha", "no-alpha"])
def test_lcm_lora_shaped_kohya_file_renders_as_diffusers(alpha, tmp_path):
    """A kohya `lora_unet_*` file over every module kind LCM-LoRA adapts (UNet only, scale 1 as LCM-LoRA runs),
    with and without `.alpha` entries (without: alpha = r, a factor of 1; with: 2 / 4)."""
    checkpoint = tiny_checkpoint()
    layers = {n: layer for n, layer in random_lora(checkpoint, seed=4, kinds=LCM_LORA).items() if n.startswith("unet.")}
    kinds = {kind for kind in LCM_LORA if any(name.endswith(kind) for name in layers)}
    assert kinds == set(LCM_LORA), set(LCM_LORA) - kinds  # the tiny UNet has every kind
    path = write_kohya(checkpoint, layers, tmp_path / "lcm_lora.safetensors", alpha=alpha)
    settings = dict(seed=5, steps=6, guidance=5.0)

    ours = StableDiffusionPipeline(checkpoint)
    base = pixels(ours.txt2img(PROMPT, progress=False, **settings)[0])
    stack = LoraStack(checkpoint)
    stack.add(load_lora(path, checkpoint), 1.0)
    adapted = pixels(ours.txt2img(PROMPT, progress=False, **settings)[0])
    stack.clear()

    pipe = reference_pipeline(checkpoint)
    pipe.load_lora_weights(str(path))
    peft_layers = {name for name, m in pipe.unet.named_modules() if hasattr(m, "lora_A") and m.lora_A}
    assert len(peft_layers) == len(layers)  # diffusers adapts every layer the file names
    theirs = pixels(pipe(PROMPT, num_inference_steps=6, guidance_scale=5.0, height=64, width=64,
                         generator=[torch.Generator().manual_seed(5)]).images[0])  # fmt: skip

    print(f"LCM-LoRA-shaped kohya, {'with' if alpha else 'without'} alpha, {len(layers)} layers: max |ours - "
          f"diffusers| {np.abs(adapted - theirs).max()}; the LoRA moves pixels by up to {np.abs(adapted - base).max()}")
    assert np.abs(adapted - base).max() > 20  # the LoRA matters
    assert np.abs(adapted - theirs).max() <= 2
