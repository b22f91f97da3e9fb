"""`python -m sd bench gif`: our GIF driver against the naive way to animate with diffusers, in one process.

The naive way is one full diffusers txt2img per frame, fed the per-frame inputs our driver interpolates
(slerped keyframe noise, lerped text embeddings). Ours with share=False does that same work, and its
frames must match diffusers' (the parity figure), so its wall-time ratio compares the engines alone;
ours with trajectory sharing (the default) then shows what sharing the keyframes' early steps saves,
in UNet frame-steps and seconds, and what it does to smoothness (jump ratios, smoothness.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sd.bench.reference import reference_pipeline
from sd.bench.timing import interleaved_medians
from sd.errors import UserError
from sd.gif.animate import animate
from sd.gif.conditioning import is_keyframe
from sd.gif.easing import EASINGS
from sd.gif.interpolation import lerp, slerp
from sd.gif.keyframes import Keyframe
from sd.gif.settings import GifSettings
from sd.gif.smoothness import transition_stats
from sd.gif.timeline import FrameSpec, plan_frames
from sd.loading.checkpoint import load_checkpoint
from sd.pipeline import StableDiffusionPipeline
from sd.samplers.noise import randn_tensor

# Prompts of the shapes data set the small model is trained on: three clearly different keyframes.
PROMPTS = (
    "a large red circle in the top left on a blue background",
    "a small yellow star in the center on a black background",
    "a large white heart in the bottom right on a pink background",
)
BUDGET_S = 15.0  # the acceptance figure: 24 frames at 64x64 on 2 CPU cores, model load included
VARIANTS = {  # key -> label, in table order
    "ours_shared": "ours, trajectory sharing (default)",
    "ours_per_frame": "ours, per frame (share=False)",
    "diffusers_naive": "diffusers, naive per-frame loop",
}


def bench_keyframes(frames: int) -> list[Keyframe]:
    """The three keyframes at the first, middle and last frame."""
    if frames < 3:
        raise UserError(f"--frames {frames}: the benchmark spreads 3 keyframes, so it needs at least 3 frames")
    return [Keyframe(frame, prompt) for frame, prompt in zip((0, frames // 2, frames - 1), PROMPTS, strict=True)]


@contextmanager
def counting_calls(module: torch.nn.Module) -> Iterator[list[int]]:
    """Count `module`'s forward calls; a guided call (CFG's two halves in one batch) is one frame-step."""
    count = [0]

    def hook(*_: object) -> None:
        count[0] += 1

    handle = module.register_forward_pre_hook(hook)
    try:
        yield count
    finally:
        handle.remove()


class NaiveDiffusersLoop:
    """One full diffusers txt2img per frame, from the same per-frame noise and text our renderer uses."""

    def __init__(self, pipe, keyframes: list[Keyframe], settings: GifSettings, size: int,
                 latent_shape: tuple[int, ...]) -> None:  # fmt: skip
        if settings.sampler != "dpmpp_2m" or settings.text_interp != "lerp" or settings.fixed_latent:
            raise UserError("the naive diffusers loop reproduces only dpmpp_2m, lerped text and slerped noise")
        self.pipe, self.keyframes, self.settings, self.size = pipe, keyframes, settings, size
        self.latent_shape = latent_shape  # (1, 4, h, w)
        self.specs = plan_frames(keyframes, EASINGS[settings.easing])

    @torch.no_grad()
    def __call__(self) -> list[Image.Image]:
        s, encode = self.settings, self.pipe.encode_prompt
        texts = encode([k.prompt for k in self.keyframes], "cpu", 1, False)[0]  # (K, 77, C)
        negative = encode([s.negative_prompt], "cpu", 1, False)[0]  # (1, 77, C)
        noises = [  # (1, 4, h, w) per keyframe, seeded as our renderer seeds it
            randn_tensor(self.latent_shape, torch.Generator("cpu").manual_seed(s.keyframe_seed(k)))
            for k in self.keyframes
        ]
        return [self._frame(spec, texts, negative, noises) for spec in self.specs]

    def _frame(self, spec: FrameSpec, texts: torch.Tensor, negative: torch.Tensor, noises: list) -> Image.Image:
        a, b, w = spec.left, spec.right, spec.weight
        if is_keyframe(spec):
            context, noise = texts[a : a + 1], noises[a]  # (1, 77, C), (1, 4, h, w)
        else:
            context, noise = lerp(texts[a : a + 1], texts[b : b + 1], w), slerp(noises[a], noises[b], w)
        s = self.settings
        return self.pipe(
            prompt_embeds=context, negative_prompt_embeds=negative, latents=noise, num_inference_steps=s.steps,
            guidance_scale=s.guidance, height=self.size, width=self.size, output_type="pil",
        ).images[0]  # fmt: skip


def jump_ratios(images: list[Image.Image], specs: list[FrameSpec]) -> list[float]:
    """Largest / median frame-to-frame step of each transition (1 = perfectly even)."""
    return [t.jump_ratio for t in transition_stats(specs, images)]


def max_pixel_difference(a: list[Image.Image], b: list[Image.Image]) -> int:
    """Largest |a - b| over every pixel and channel of two frame lists, in 0..255 steps."""
    pairs = zip(a, b, strict=True)
    return max(int(np.abs(np.asarray(x, np.int16) - np.asarray(y, np.int16)).max()) for x, y in pairs)


def bench_gif(checkpoint_path: str | Path, frames: int = 24, repeats: int = 3) -> dict:
    """Load once, time one cold end-to-end run, then time the three variants interleaved (medians)."""
    # Planned frames: the diffusers loop renders the same specs one by one (even spacing's extra probes are measured
    # by `python -m sd bench morph`).
    keyframes, settings = bench_keyframes(frames), GifSettings(frame_spacing="planned")
    start = time.perf_counter()
    checkpoint = load_checkpoint(checkpoint_path)
    load_s = time.perf_counter() - start
    ours = StableDiffusionPipeline(checkpoint)
    animate(keyframes, None, replace(settings), pipe=ours, cache_dir=None, progress=False)
    end_to_end_s = time.perf_counter() - start

    size = checkpoint.vae.config.resolution
    reference = reference_pipeline(checkpoint, "DPMSolverMultistepScheduler")
    latent_shape = (1, checkpoint.unet.config.in_channels, *ours.latent_size(size, size))
    naive = NaiveDiffusersLoop(reference, keyframes, settings, size, latent_shape)
    outcomes: dict[str, dict] = {}

    def ours_run(key: str, share: bool) -> Callable[[], None]:
        def run() -> None:
            with counting_calls(checkpoint.unet) as calls:
                animation = animate(
                    keyframes, None, replace(settings, share=share), pipe=ours, cache_dir=None, progress=False
                )  # fmt: skip
            outcomes[key] = {"images": animation.frames, "specs": animation.specs,
                             "unet_steps": animation.unet_steps, "unet_calls": calls[0]}  # fmt: skip

        return run

    def naive_run() -> None:
        with counting_calls(naive.pipe.unet) as calls:
            images = naive()
        outcomes["diffusers_naive"] = {"images": images, "specs": naive.specs,
                                       "unet_steps": calls[0], "unet_calls": calls[0]}  # fmt: skip

    runs = {"ours_shared": ours_run("ours_shared", True), "ours_per_frame": ours_run("ours_per_frame", False),
            "diffusers_naive": naive_run}  # fmt: skip
    medians = interleaved_medians(runs, repeats=repeats)

    per_frame_steps = len(naive.specs) * settings.steps
    variants = {}
    for key, label in VARIANTS.items():
        outcome = outcomes[key]
        ratios = jump_ratios(outcome["images"], outcome["specs"])
        variants[key] = outcome | {
            "label": label, "seconds": medians[key], "vs_diffusers": medians[key] / medians["diffusers_naive"],
            "steps_vs_per_frame": outcome["unet_steps"] / per_frame_steps, "jump_ratios": ratios,
            "max_jump_ratio": max(ratios), "mean_jump_ratio": float(np.mean(ratios)),
        }  # fmt: skip
    parity = max_pixel_difference(outcomes["ours_per_frame"]["images"], outcomes["diffusers_naive"]["images"])
    return {
        "frames": len(naive.specs), "size": size, "steps": settings.steps, "sampler": settings.sampler,
        "guidance": settings.guidance, "threads": torch.get_num_threads(), "repeats": repeats,
        "load_s": load_s, "end_to_end_s": end_to_end_s, "budget_s": BUDGET_S, "variants": variants,
        "per_frame_unet_steps": per_frame_steps, "parity_max_pixel_difference": parity,
    }  # fmt: skip
