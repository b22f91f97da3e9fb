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


def render_ours(checkpoint, path, scale: float, steps: int):
    """Our images without the LoRA, with it at runtime and with it merged into the weights; and the LoRA."""
    settings = dict(seed=5, steps=steps, guidance=5.0, progress=False)
    pipe = StableDiffusionPipeline(checkpoint)
    base = pixels(pipe.txt2img(PROMPT, **settings)[0])
    stack = LoraStack(checkpoint)
    lora = load_lora(path, checkpoint)
    stack.add(lora, scale)
    runtime = pixels(pipe.txt2img(PROMPT, **settings)[0])
    stack.merge()
    merged = pixels(pipe.txt2img(PROMPT, **settings)[0])
    stack.clear()
    return base, runtime, merged, lora


def render_diffusers(checkpoint, path, scale: float, steps: int):
    """diffusers' image with the LoRA read by `load_lora_weights` at `scale`, and its pipeline."""
    pipe = reference_pipeline(checkpoint)
    pipe.load_lora_weights(str(path), adapter_name="random")
    pipe.set_adapters(["random"], [scale])
    image = pipe(PROMPT, num_inference_steps=steps, guidance_scale=5.0, height=64, width=64,
                 generator=[torch.Generator().manual_seed(5)]).images[0]  # fmt: skip
    return pixels(image), pipe


def adapted_layers(module) -> set[str]:
    return {name for name, m in module.named_modules() if hasattr(m, "lora_A") and m.lora_A}


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
    base, runtime, merged, lora = render_ours(checkpoint, path, SCALE, steps=10)
    theirs, pipe = render_diffusers(checkpoint, path, SCALE, steps=10)
    text_layers = sum(name.startswith("text_encoder.") for name in lora.layers)
    assert len(adapted_layers(pipe.text_encoder)) == text_layers  # none dropped

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
    base, runtime, merged, _ = render_ours(checkpoint, path, 1.0, steps=6)
    theirs, pipe = render_diffusers(checkpoint, path, 1.0, steps=6)
    assert len(adapted_layers(pipe.unet)) == len(layers)  # diffusers adapts every layer the file names

    print(f"LCM-LoRA-shaped kohya, {'with' if alpha else 'without'} alpha, {len(layers)} layers: max |ours - "
          f"diffusers| runtime {np.abs(runtime - theirs).max()}, merged {np.abs(merged - theirs).max()}; the LoRA "
          f"moves pixels by up to {np.abs(runtime - base).max()}")
    assert np.abs(runtime - base).max() > 20  # the LoRA matters
    assert np.abs(runtime - theirs).max() <= 2
    assert np.abs(merged - theirs).max() <= 2
