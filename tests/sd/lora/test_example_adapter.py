"""The example LoRA in weights/ (sd/train/lora.py's default run): "red" is drawn teal, other prompts stay."""

import numpy as np
import pytest

from sd.eval.classifier import load_classifier
from sd.loading.checkpoint import load_checkpoint
from sd.lora.adapter import load_lora
from sd.lora.stack import applied_loras
from sd.paths import DEFAULT_CHECKPOINT
from sd.pipeline import StableDiffusionPipeline

EXAMPLE = DEFAULT_CHECKPOINT.with_name("lora-red-teal.safetensors")
PROMPTS = ["a large red circle in the center on a black background", "a small red star in the top left on a white "
           "background", "a large yellow heart in the bottom right on a blue background"]  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint():
    return load_checkpoint(DEFAULT_CHECKPOINT)


def test_example_lora_is_small_and_redraws_red_as_teal(checkpoint):
    assert EXAMPLE.stat().st_size < 2**20
    pipe = StableDiffusionPipeline(checkpoint)

    def render() -> list:
        return [pipe.txt2img(p, seed=4, steps=20, sampler="dpmpp_2m", guidance=5.0, progress=False)[0] for p in PROMPTS]

    base = render()
    with applied_loras(checkpoint, [(load_lora(EXAMPLE, checkpoint), 1.0)]):
        adapted = render()
    classifier = load_classifier()
    assert [p["colour"] for p in classifier.predict(base)] == ["red", "red", "yellow"]
    read = classifier.predict(adapted)
    assert [p["colour"] for p in read] == ["teal", "teal", "yellow"]
    assert read[2] == classifier.predict(base)[2]  # the prompt without "red": every attribute as before
    assert np.abs(np.asarray(adapted[2], dtype=np.int16) - np.asarray(base[2], dtype=np.int16)).mean() < 5
