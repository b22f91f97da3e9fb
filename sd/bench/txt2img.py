"""A whole txt2img (text encoder, CFG-batched UNet steps, VAE decode): our pipeline vs diffusers'."""

from __future__ import annotations

import torch

from sd.bench.reference import reference_pipeline
from sd.bench.timing import interleaved_medians
from sd.loading.checkpoint_types import Checkpoint
from sd.pipeline import StableDiffusionPipeline

PROMPT = "a photograph of an astronaut riding a horse"


def bench_txt2img(checkpoint: Checkpoint, steps: int, size: int, repeats: int) -> dict[str, float]:
    ours = StableDiffusionPipeline(checkpoint)
    reference = reference_pipeline(checkpoint, "DDIMScheduler")
    runs = {
        "ours": lambda: ours.txt2img(PROMPT, steps=steps, width=size, height=size, sampler="ddim", progress=False),
        "diffusers": lambda: reference(
            PROMPT, num_inference_steps=steps, width=size, height=size, generator=[torch.Generator().manual_seed(0)]
        ),
    }
    return interleaved_medians(runs, repeats=repeats)
