"""Rendering frames of a keyframed animation: noise, text and (optionally) trajectories interpolated.

For a frame between keyframes a and b at weight w (see timeline.py):
    noise   = slerp(noise_a, noise_b, w)        one noise per keyframe, from its seed (settings.py)
    context = lerp or slerp(text_a, text_b, w)  the text encoder's hidden states, (77, C)
and the sampler runs from there, so every frame is a point on a smooth path between the keyframes'
images. With --fixed-latent all frames use keyframe 0's noise and only the text moves. With an init
image every frame is img2img from it (the same encoded image, each frame's own noise); with --feedback
frame n is img2img from frame n - 1's latents instead. With a video (--video), frame n is img2img from the
video's frame at the same time (sd/video/reader.py), at --video-strength, with frame n's interpolated noise.

Trajectory sharing (on by default): the keyframes are denoised in full and their latents are kept at
step `branch` of the schedule; an in-between frame starts there, from slerp(x_a, x_b, w), and runs only
the remaining steps. The early steps, which decide the layout, are shared with the keyframes, so a
transition costs a fraction of the UNet evaluations and its frames stay coherent (the idea of latent
blending, Lunarring 2022, with one branch point).

Batches: frames of one kind are denoised --batch at a time, and a frame's pixels do not depend on the
batch size: every sampler step is elementwise, the UNet embeds a shared timestep once (as one row) and
decoding runs one frame at a time; a UNet batch of one, for which oneDNN picks another convolution
kernel, runs as two. Measured on this CPU: identical bits for UNet batches of 2 to 12 (up to 6 guided
frames); from 16 on, MKL blocks the 1x1 convolutions' matrix products differently and a value can
differ in its last bit, which can move a pixel by one level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from sd.gif.frame_cache import FrameCache, frame_key
from sd.gif.interpolation import lerp, slerp
from sd.gif.keyframes import Keyframe
from sd.gif.settings import GifSettings
from sd.gif.timeline import FrameSpec
from sd.images import image_to_tensor, load_image, tensor_to_images
from sd.pipeline import StableDiffusionPipeline, generators_for, img2img_start
from sd.samplers.noise import randn_tensor
from sd.samplers.spacing import LEADING_SD15

# Called after each generated frame with (image, frames done, frames to do); raising from it stops the run.
OnFrame = Callable[[Image.Image, int, int], None]


@dataclass
class RenderedFrame:
    spec: FrameSpec
    image: Image.Image
    latents: torch.Tensor  # (1, 4, h, w) final latents
    key: str
    begin: int  # first sampler step this frame ran from (0: pure noise)
    cached: bool


def is_keyframe(spec: FrameSpec) -> bool:
    return spec.weight == 0.0


class FrameRenderer:
    def __init__(
        self,
        pipe: StableDiffusionPipeline,
        keyframes: list[Keyframe],
        settings: GifSettings,
        weights_sha256: str,
        cache: FrameCache | None = None,
        progress: bool = True,
        on_frame: OnFrame | None = None,
    ) -> None:
        s = self.settings = settings
        self.pipe, self.keyframes, self.progress = pipe, keyframes, progress
        self.on_frame = on_frame or (lambda image, done, total: None)
        self.cache = cache or FrameCache(None)
        resolution = pipe.checkpoint.vae.config.resolution
        self.width, self.height = s.width or resolution, s.height or resolution
        self.seeds = [s.keyframe_seed(k) for k in keyframes]
        latent_shape = (1, pipe.checkpoint.unet.config.in_channels, self.height // 8, self.width // 8)
        self.noises = [  # (1, 4, h, w) per keyframe, drawn as txt2img draws with that seed
            randn_tensor(latent_shape, generators_for(seed, 1), pipe.dtype, pipe.device) for seed in self.seeds
        ]
        self.contexts = pipe.encode_prompt([k.prompt for k in keyframes])  # (K, 77, C)
        self.uncond = pipe.encode_prompt([s.negative_prompt]) if s.guidance > 1.0 else None  # (1, 77, C)

        self.init_latents = None
        self.start = 0  # first step of a frame's own trajectory
        if s.init_image is not None:
            image = image_to_tensor(load_image(s.init_image), self.width, self.height)  # (1, 3, H, W)
            self.init_latents = pipe.encode_image(image, generators_for(s.seed, 1))  # (1, 4, h, w)
            self.start = img2img_start(s.steps, s.strength)
        self.feedback_start = img2img_start(s.steps, s.strength)
        self.video = None
        if s.video is not None:
            from sd.video.reader import read_video

            self.video = read_video(s.video)
            self.video_start = min(img2img_start(s.steps, s.video_strength), s.steps - 1)  # at least one step
            self.video_latents: dict[int, torch.Tensor] = {}  # clip frame -> (1, 4, h, w)
        self.share = s.share and not s.feedback and self.video is None and len(keyframes) > 1
        self.branch = min(max(self.start + round((s.steps - self.start) * s.branch), self.start), s.steps - 1)
        self.branch_latents: dict[int, torch.Tensor] = {}  # keyframe index -> (1, 4, h, w) at step `branch`
        self.unet_steps = 0  # sampler steps run, summed over frames (a guided step counts once)
        self.base = {
            "weights": weights_sha256, "negative": s.negative_prompt, "steps": s.steps, "sampler": s.sampler,
            "guidance": float(s.guidance), "size": [self.width, self.height], "text_interp": s.text_interp,
            "fixed_latent": s.fixed_latent, "init": s.init_image_sha256,
            "strength": float(s.strength) if s.init_image or s.feedback else None,
            "feedback": s.feedback, "share": self.share, "branch": self.branch if self.share else None,
            "dtype": str(pipe.dtype), "prediction_type": pipe.checkpoint.prediction_type,
        }  # fmt: skip
        if s.loras:  # only then, so frames cached before LoRAs existed keep their keys
            self.base["loras"] = [[lora["sha256"], float(lora["scale"])] for lora in s.loras]
        if self.video is not None:  # only then, so the keys of runs without a video stay as they were
            self.base |= {"video": s.video_sha256, "video_strength": float(s.video_strength)}
        timesteps = pipe.timestep_config(s.sampler, s.spacing)
        if timesteps != LEADING_SD15:  # only then: frames cached before the spacing could change were made with it
            self.base["timesteps"] = [timesteps.spacing, timesteps.steps_offset, timesteps.set_alpha_to_one]

    # ---- what a frame is made of ------------------------------------------------------------------
    def _keyframe_part(self, index: int) -> dict:
        return {"prompt": self.keyframes[index].prompt, "seed": self.seeds[index]}

    def key(self, spec: FrameSpec, previous: str | None = None, video_frame: int | None = None) -> str:
        if is_keyframe(spec):
            parts = {"keyframe": self._keyframe_part(spec.left)}
        else:
            left, right = self._keyframe_part(spec.left), self._keyframe_part(spec.right)
            parts = {"left": left, "right": right, "weight": float(spec.weight)}
        if video_frame is not None:
            parts["video_frame"] = video_frame
        return frame_key(self.base | parts | {"previous": previous})

    def noise(self, spec: FrameSpec) -> torch.Tensor:
        if self.settings.fixed_latent:
            return self.noises[0]
        if is_keyframe(spec):
            return self.noises[spec.left]
        return slerp(self.noises[spec.left], self.noises[spec.right], spec.weight)  # (1, 4, h, w)

    def context(self, spec: FrameSpec) -> torch.Tensor:
        a, b, w = self.contexts[spec.left : spec.left + 1], self.contexts[spec.right : spec.right + 1], spec.weight
        if is_keyframe(spec) or self.settings.text_interp == "off" and w < 0.5:
            return a  # (1, 77, C)
        if self.settings.text_interp == "off":
            return b
        return (slerp if self.settings.text_interp == "slerp" else lerp)(a, b, w)

    def _sampler_from(self, begin: int):
        """A fresh sampler (multistep ones keep state) that starts at step `begin`."""
        sampler = self.pipe._sampler(self.settings.sampler, self.settings.steps, 0.0, self.settings.spacing)
        sampler.set_begin_index(begin)
        return sampler

    def _noised(self, clean: torch.Tensor, noise: torch.Tensor, begin: int) -> torch.Tensor:
        sampler = self._sampler_from(begin)
        return sampler.add_noise(clean, noise, sampler.timesteps[begin : begin + 1])

    def start_latents(self, spec: FrameSpec, previous: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
        """The latents a frame starts from and the step it starts at."""
        if previous is not None:  # --feedback: img2img from the previous frame's latents
            return self._noised(previous, self.noise(spec), self.feedback_start), self.feedback_start
        if self.share and not is_keyframe(spec):
            a, b = self.branch_latents[spec.left], self.branch_latents[spec.right]
            return slerp(a, b, spec.weight), self.branch  # (1, 4, h, w) at step `branch`
        if self.init_latents is not None:
            return self._noised(self.init_latents, self.noise(spec), self.start), self.start
        return self.noise(spec) * self._sampler_from(0).init_noise_sigma, 0

    # ---- running the model -------------------------------------------------------------------------
    def _denoise(
        self, latents: torch.Tensor, contexts: torch.Tensor, begin: int, capture: int | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        s, n = self.settings, latents.shape[0]
        if self.uncond is None and n == 1:  # a UNet batch of one rounds differently on CPU: run it as two
            latents, contexts = latents.repeat(2, 1, 1, 1), contexts.repeat(2, 1, 1)
        sampler = self._sampler_from(begin)
        uncond = None if self.uncond is None else self.uncond.expand(latents.shape[0], -1, -1)
        kept: list[torch.Tensor] = []

        def keep(i: int, x: torch.Tensor) -> None:
            if capture is not None and begin + i == capture:
                kept.append(x.clone())

        # Noise a sampler draws between steps (LCM's) is the same for every frame, whatever its place in the
        # batch: frames then do not flicker, and batching changes nothing. The deterministic samplers draw none.
        step_noise = [torch.Generator("cpu").manual_seed(0) for _ in range(latents.shape[0])]
        out = self.pipe.denoise(
            latents, contexts, uncond, sampler, sampler.timesteps[begin:], s.guidance, step_noise,
            progress=self.progress, on_step=keep,
        )  # fmt: skip
        self.unet_steps += n * (s.steps - begin)
        return out[:n], (kept[0][:n] if kept else None)

    def _finish(self, spec: FrameSpec, key: str, latents: torch.Tensor, begin: int) -> RenderedFrame:
        image = tensor_to_images(self.pipe.decode_latents(latents))[0]  # one frame at a time: batch-invariant
        entry = {"image": torch.from_numpy(np.asarray(image).copy()), "latents": latents}
        if is_keyframe(spec) and spec.left in self.branch_latents:
            entry["branch"] = self.branch_latents[spec.left]
        self.cache.put(key, entry)
        return RenderedFrame(spec, image, latents, key, begin, cached=False)

    def _from_cache(self, spec: FrameSpec, key: str, begin: int) -> RenderedFrame | None:
        entry = self.cache.get(key)
        if entry is None or (self.share and is_keyframe(spec) and "branch" not in entry):
            return None
        if "branch" in entry:
            self.branch_latents[spec.left] = entry["branch"].to(self.pipe.device, self.pipe.dtype)
        image = Image.fromarray(entry["image"].numpy())
        return RenderedFrame(spec, image, entry["latents"].to(self.pipe.device, self.pipe.dtype), key, begin, True)

    def _run_group(self, specs: list[FrameSpec], keys: list[str], capture: bool, bar: tqdm) -> list[RenderedFrame]:
        done = []
        for i in range(0, len(specs), self.settings.batch):
            chunk, chunk_keys = specs[i : i + self.settings.batch], keys[i : i + self.settings.batch]
            starts = [self.start_latents(spec) for spec in chunk]
            begin = starts[0][1]
            latents = torch.cat([x for x, _ in starts])  # (n, 4, h, w)
            contexts = torch.cat([self.context(spec) for spec in chunk])  # (n, 77, C)
            out, branch = self._denoise(latents, contexts, begin, self.branch if capture else None)
            for j, (spec, key) in enumerate(zip(chunk, chunk_keys, strict=True)):
                if branch is not None:
                    self.branch_latents[spec.left] = branch[j : j + 1]
                done.append(self._finish(spec, key, out[j : j + 1], begin))
                bar.update(1)
                self.frames_done += 1  # not bar.n: a disabled tqdm does not count
                self.on_frame(done[-1].image, self.frames_done, bar.total)
        return done

    def _begin(self, spec: FrameSpec) -> int:
        return self.branch if self.share and not is_keyframe(spec) else self.start

    def render(self, specs: list[FrameSpec]) -> list[RenderedFrame]:
        """The frames of `specs`, in order; each distinct frame is generated once (or read from the cache)."""
        if self.settings.feedback:
            return self._render_feedback(specs)
        if self.video is not None:
            return self._render_video(specs)
        keys = [self.key(spec) for spec in specs]
        unique = dict(zip(keys, specs, strict=True))  # key -> spec, first-seen order
        found = {}
        if self.share:  # in-betweens branch from their keyframes' latents: make sure each keyframe is at hand
            needed = {i for s in unique.values() if not is_keyframe(s) for i in (s.left, s.right)}
            for i in sorted(needed - set(self.branch_latents)):
                spec = FrameSpec(i, i, 0.0)
                unique.setdefault(self.key(spec), spec)
        for key, spec in unique.items():
            hit = self._from_cache(spec, key, self._begin(spec))
            if hit is not None:
                found[key] = hit
        todo = [k for k in unique if k not in found]
        # With sharing, keyframes first (keeping their latents at the branch step), then the in-betweens.
        keyframes = [k for k in todo if is_keyframe(unique[k])]
        betweens = [k for k in todo if not is_keyframe(unique[k])]
        groups = [(keyframes, True), (betweens, False)] if self.share else [(todo, False)]
        self.frames_done = 0
        with tqdm(total=len(todo), desc="frames", disable=not self.progress) as bar:
            for group, capture in groups:
                rendered = self._run_group([unique[k] for k in group], group, capture=capture, bar=bar)
                found |= {frame.key: frame for frame in rendered}
        return [found[key] for key in keys]

    def _render_feedback(self, specs: list[FrameSpec]) -> list[RenderedFrame]:
        frames: list[RenderedFrame] = []
        for spec in tqdm(specs, desc="frames", disable=not self.progress):
            previous = frames[-1] if frames else None
            key = self.key(spec, previous.key if previous else None)
            begin = self.feedback_start if previous else self.start
            frame = self._from_cache(spec, key, begin)
            if frame is None:
                latents, begin = self.start_latents(spec, previous.latents if previous else None)
                out, _ = self._denoise(latents, self.context(spec), begin, None)
                frame = self._finish(spec, key, out, begin)
            frames.append(frame)
            self.on_frame(frame.image, len(frames), len(specs))
        return frames

    def _video_latents(self, index: int) -> torch.Tensor:
        if index not in self.video_latents:
            image = image_to_tensor(self.video.frames[index], self.width, self.height)  # (1, 3, H, W)
            self.video_latents[index] = self.pipe.encode_image(image, generators_for(self.settings.seed, 1))
        return self.video_latents[index]  # (1, 4, h, w)

    def _render_video(self, specs: list[FrameSpec]) -> list[RenderedFrame]:
        """Frame n: img2img from the clip's frame at n / fps seconds, with frame n's noise and text."""
        frames: list[RenderedFrame] = []
        for n, spec in enumerate(tqdm(specs, desc="frames", disable=not self.progress)):
            index = self.video.frame_at(n, self.settings.fps)
            key = self.key(spec, video_frame=index)
            frame = self._from_cache(spec, key, self.video_start)
            if frame is None:
                latents = self._noised(self._video_latents(index), self.noise(spec), self.video_start)
                out, _ = self._denoise(latents, self.context(spec), self.video_start, None)
                frame = self._finish(spec, key, out, self.video_start)
            frames.append(frame)
            self.on_frame(frame.image, len(frames), len(specs))
        return frames
