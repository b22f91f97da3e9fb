"""What a frame is conditioned on, interpolated between its two keyframes: starting noise, text, per-step noise.

For a frame between keyframes a and b at weight w (see timeline.py):
    noise   = slerp(noise_a, noise_b, w)        one noise per keyframe, from its seed (settings.py)
    context = lerp or slerp(text_a, text_b, w)  the text encoder's hidden states, (77, C)
so every frame is a point on a smooth path between the keyframes' inputs. With --fixed-latent all frames
use keyframe 0's noise and only the text moves; with --text-interp off the text switches at w = 0.5.
A keyframe (w = 0) gets exactly what txt2img gives its prompt and seed.
"""

from __future__ import annotations

import torch

from sd.gif.interpolation import INTERPOLATIONS, slerp
from sd.gif.keyframes import Keyframe
from sd.gif.settings import GifSettings
from sd.gif.timeline import FrameSpec
from sd.pipeline import StableDiffusionPipeline, generators_for
from sd.samplers.noise import InterpolatedNoise, randn_tensor


def is_keyframe(spec: FrameSpec) -> bool:
    return spec.weight == 0.0


class KeyframeConditioning:
    def __init__(
        self, pipe: StableDiffusionPipeline, keyframes: list[Keyframe], settings: GifSettings,
        latent_shape: tuple[int, ...],
    ) -> None:  # fmt: skip
        """`latent_shape`: (1, 4, h, w) of one frame."""
        self.settings, self.latent_shape, self.pipe = settings, latent_shape, pipe
        self.seeds = [settings.keyframe_seed(k) for k in keyframes]
        self.noises = [  # (1, 4, h, w) per keyframe, drawn as txt2img draws with that seed
            randn_tensor(latent_shape, generators_for(seed, 1), pipe.dtype, pipe.device) for seed in self.seeds
        ]
        self.contexts = pipe.encode_prompt([k.prompt for k in keyframes])  # (K, 77, C)
        guided = settings.guidance > 1.0
        self.uncond = pipe.encode_prompt([settings.negative_prompt]) if guided else None  # (1, 77, C)

    def noise(self, spec: FrameSpec) -> torch.Tensor:
        """The frame's starting noise (1, 4, h, w), N(0, I) in distribution."""
        if self.settings.fixed_latent:
            return self.noises[0]
        if is_keyframe(spec):
            return self.noises[spec.left]
        return slerp(self.noises[spec.left], self.noises[spec.right], spec.weight)  # (1, 4, h, w)

    def context(self, spec: FrameSpec) -> torch.Tensor:
        """The frame's text context (1, 77, C)."""
        a, b, w = self.contexts[spec.left : spec.left + 1], self.contexts[spec.right : spec.right + 1], spec.weight
        if is_keyframe(spec) or self.settings.text_interp == "off" and w < 0.5:
            return a  # (1, 77, C)
        if self.settings.text_interp == "off":
            return b
        return INTERPOLATIONS[self.settings.text_interp](a, b, w)  # --text-interp lerp or slerp

    def step_noise(self, specs: list[FrameSpec], begin: int = 0) -> InterpolatedNoise:
        """Where each frame's noise between steps comes from, for samplers that draw some (LCM; the others draw
        nothing). A keyframe's draws continue its seed's generator after the starting noise, as txt2img's do;
        an in-between's k-th draw is slerp(a's k-th, b's k-th, w), as its starting noise is, so neighbouring
        frames do not flicker. A frame that starts at step `begin` (trajectory sharing) skips the keyframes'
        first `begin` draws, so step k gets the same draws in every frame."""

        def after_start(seed: int) -> torch.Generator:
            generator = generators_for(seed, 1)[0]
            for _ in range(1 + begin):  # the starting noise, then one draw per step already taken
                randn_tensor(self.latent_shape, generator, self.pipe.dtype, "cpu")
            return generator

        a = [after_start(self.seeds[spec.left]) for spec in specs]
        b = [after_start(self.seeds[spec.right]) for spec in specs]
        return InterpolatedNoise(a, b, [float(spec.weight) for spec in specs], slerp)
