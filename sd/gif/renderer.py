"""Rendering the frames of a keyframed animation: one path from a frame's spec to its pixels.

    spec ─ key (frame_cache.py) ─ in the cache? ─────────────────────────────────────────────> pixels
             └ no: start latents and first step (start_latents.py)
                   + text context (conditioning.py)
                   ─ denoised from that step, --batch frames a UNet call, inside the denoise context
                   ─ decoded ─ cached ──────────────────────────────────────────────────────> pixels

Each distinct frame is made once. With trajectory sharing the keyframes run first (their latents are kept at
the branch step, where the in-betweens start); with --feedback frame n starts from frame n - 1, so frames run
one by one.

The denoise context is the seam for what changes the UNet calls of one batch: attention interpolation (AID)
captures the keyframes' keys and values while they are denoised (`keyframes`) and lets the in-betweens attend
to them (`in_betweens`). By default it changes nothing.

Batches: frames of one kind are denoised --batch at a time (by default as many as fill 2 UNet rows:
1 guided, 2 unguided; GifSettings.frames_per_call), and a frame's pixels do not depend on the batch
size: every sampler step is elementwise, the UNet embeds a shared timestep once (as one row) and
decoding runs one frame at a time; a UNet batch of one, for which oneDNN picks another convolution
kernel, runs as two. Measured on this CPU: identical bits for UNet batches of 2 to 12 (up to 6 guided
frames); from 16 on, MKL blocks the 1x1 convolutions' matrix products differently and a value can
differ in its last bit, which can move a pixel by one level.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from sd.gif.attention_interpolation import AttentionDenoising
from sd.gif.conditioning import KeyframeConditioning, is_keyframe
from sd.gif.frame_cache import FrameCache, FrameKeys
from sd.gif.keyframes import Keyframe
from sd.gif.settings import GifSettings
from sd.gif.start_latents import StartLatents
from sd.gif.timeline import FrameSpec
from sd.images import tensor_to_images
from sd.pipeline import StableDiffusionPipeline
from sd.samplers.spacing import LEADING_SD15

# Called after each generated frame with (image, frames generated so far in this run, those plus the ones still to do in
# this pass: even frame spacing renders in several passes, so the total grows); raising from it stops the run.
OnFrame = Callable[[Image.Image, int, int], None]


@dataclass
class RenderedFrame:
    spec: FrameSpec
    image: Image.Image
    latents: torch.Tensor  # (1, 4, h, w) final latents
    key: str
    begin: int  # first sampler step this frame ran from (0: pure noise)
    cached: bool


@dataclass
class FrameJob:
    spec: FrameSpec
    key: str
    video_frame: int | None = None  # --video: the clip frame it starts from


class DenoiseContext(Protocol):
    """`with` blocks around a batch's denoising (the UNet calls of all its steps)."""

    captures_keyframes: bool  # in-betweens need their keyframes denoised in this run, not read from the cache

    def keyframes(self, indices: list[int]) -> AbstractContextManager[object]:
        """Around keyframes `indices` (one per frame of the batch), denoised from their first step to the last."""
        ...

    def in_betweens(self, specs: list[FrameSpec]) -> AbstractContextManager[object]:
        """Around in-betweens `specs` (one per frame of the batch), after their keyframes."""
        ...


class PlainDenoising:
    """The UNet as it is."""

    captures_keyframes = False

    def keyframes(self, indices: list[int]) -> AbstractContextManager[object]:
        return nullcontext()

    def in_betweens(self, specs: list[FrameSpec]) -> AbstractContextManager[object]:
        return nullcontext()


def keyframes_of(jobs) -> set[int]:
    """The keyframes that the in-betweens among `jobs` blend."""
    return {i for job in jobs if not is_keyframe(job.spec) for i in (job.spec.left, job.spec.right)}


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
        denoising: DenoiseContext | None = None,
    ) -> None:
        """`settings` with the input files' hashes filled in (animate does it): they are part of the keys."""
        s = self.settings = settings
        self.pipe, self.progress = pipe, progress
        self.on_frame = on_frame or (lambda image, done, total: None)
        self.cache = cache or FrameCache(None)
        resolution = pipe.checkpoint.vae.config.resolution
        self.width, self.height = s.width or resolution, s.height or resolution
        latent_shape = (1, pipe.checkpoint.unet.config.in_channels, *pipe.latent_size(self.width, self.height))
        self.conditioning = KeyframeConditioning(pipe, keyframes, s, latent_shape)
        self.starts = StartLatents(pipe, s, self.conditioning, (self.width, self.height), len(keyframes))
        share = self.starts.share
        base = {
            "weights": weights_sha256, "size": [self.width, self.height], "share": share,
            "branch": self.starts.branch if share else None, "dtype": str(pipe.dtype),
            "prediction_type": pipe.checkpoint.prediction_type,
        }  # fmt: skip
        timesteps = pipe.timestep_config(s.sampler, s.spacing)
        if timesteps != LEADING_SD15:  # only then: frames cached before the spacing could change were made with it
            base["timesteps"] = [timesteps.spacing, timesteps.steps_offset, timesteps.set_alpha_to_one]
        if denoising is None and s.attention != "off":
            inbetween_begin = self.starts.begin(FrameSpec(0, 1, 0.5))
            guided = self.conditioning.uncond is not None
            denoising = AttentionDenoising(pipe, s, latent_shape[2:], inbetween_begin, len(keyframes), guided)
        self.denoising = denoising or PlainDenoising()
        in_between = {"adain": True} if s.adain else {}  # keyframes keep their keys; a switch joins when on
        if s.attention != "off":
            in_between["attention"] = [s.attention, float(s.attention_fraction), s.attention_budget_mb]
        self.keys = FrameKeys(s, keyframes, self.conditioning.seeds, base, in_between)
        self.captured: set[int] = set()  # keyframes denoised in this run (their capture, if any, is at hand)
        self.unet_steps = 0  # sampler steps run, summed over frames (a guided step counts once)
        self.generated = 0  # frames generated in this run, over every render() call

    @property
    def seeds(self) -> list[int]:
        return self.conditioning.seeds

    # ---- the path ---------------------------------------------------------------------------------------
    def render(self, specs: list[FrameSpec]) -> list[RenderedFrame]:
        """The frames of `specs`, in order; each distinct frame is generated once (or read from the cache)."""
        if self.settings.feedback:
            return self._render_feedback(specs)
        video = self.starts.video
        jobs = [self._job(spec, video_frame=video.frame_at(n, self.settings.fps) if video else None)
                for n, spec in enumerate(specs)]  # fmt: skip
        unique = {job.key: job for job in jobs}  # first-seen order
        if self.starts.share:  # in-betweens branch from their keyframes' latents: make sure each keyframe is at hand
            self._add_keyframes(unique, keyframes_of(unique.values()) - set(self.starts.branch_latents))
        found = {key: hit for key, job in unique.items() if (hit := self._from_cache(job)) is not None}
        if self.denoising.captures_keyframes:  # captured while denoised: a cached keyframe runs again if needed
            todo = [job for key, job in unique.items() if key not in found]
            for key in self._add_keyframes(unique, keyframes_of(todo) - self.captured):
                found.pop(key, None)
        found |= self._generate([job for key, job in unique.items() if key not in found])
        return [found[job.key] for job in jobs]

    def _add_keyframes(self, unique: dict[str, FrameJob], indices: set[int]) -> list[str]:
        """Add the jobs of keyframes `indices` to `unique`; their keys."""
        keys = []
        for i in sorted(indices):
            job = self._job(FrameSpec(i, i, 0.0))
            unique.setdefault(job.key, job)
            keys.append(job.key)
        return keys

    def _generate(self, todo: list[FrameJob]) -> dict[str, RenderedFrame]:
        """Denoise and decode `todo`, --batch at a time; keyframes first when in-betweens start from them or
        attend to them."""
        keyframes = [job for job in todo if is_keyframe(job.spec)]
        betweens = [job for job in todo if not is_keyframe(job.spec)]
        split = self.starts.share or self.denoising.captures_keyframes
        made: dict[str, RenderedFrame] = {}
        per_call = self.settings.frames_per_call(guided=self.conditioning.uncond is not None)
        with tqdm(total=len(todo), desc="frames", disable=not self.progress) as bar:
            for group in [keyframes, betweens] if split else [todo]:
                for i in range(0, len(group), per_call):
                    for frame in self._run(group[i : i + per_call]):
                        made[frame.key] = frame
                        bar.update(1)
                        self.generated += 1  # not bar.n: a disabled tqdm does not count
                        self.on_frame(frame.image, self.generated, self.generated - len(made) + len(todo))
        return made

    def _job(self, spec: FrameSpec, previous: str | None = None, video_frame: int | None = None) -> FrameJob:
        return FrameJob(spec, self.keys.key(spec, previous, video_frame), video_frame)

    def _run(self, jobs: list[FrameJob], previous: torch.Tensor | None = None) -> list[RenderedFrame]:
        """Denoise and decode `jobs` (one batch, all starting at the same step); `previous`: --feedback's latents."""
        specs = [job.spec for job in jobs]
        begin = self.starts.begin(specs[0], previous is not None)
        latents = torch.cat([self.starts.latents(job.spec, previous, job.video_frame) for job in jobs])  # (n, 4, h, w)
        contexts = torch.cat([self.conditioning.context(spec) for spec in specs])  # (n, 77, C)
        all_keyframes = all(is_keyframe(spec) for spec in specs)
        keep = self.starts.branch if self.starts.share and all_keyframes else None
        if all_keyframes:
            around = self.denoising.keyframes([spec.left for spec in specs])
        elif not any(is_keyframe(spec) for spec in specs):
            around = self.denoising.in_betweens(specs)
        else:  # a mixed batch: only when nothing is captured, so the plain UNet is what runs
            around = nullcontext()
        with around:
            out, branch = self._denoise(latents, contexts, begin, keep, specs)
        if all_keyframes:
            self.captured |= {spec.left for spec in specs}
        frames = []
        for j, job in enumerate(jobs):
            if branch is not None:
                self.starts.branch_latents[job.spec.left] = branch[j : j + 1]
            frames.append(self._finish(job, out[j : j + 1], begin))
        return frames

    def _denoise(
        self, latents: torch.Tensor, contexts: torch.Tensor, begin: int, keep: int | None, specs: list[FrameSpec]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Latents (n, 4, h, w) at step `begin` denoised to the end; also those before step `keep`, if given."""
        s, n = self.settings, latents.shape[0]
        uncond = self.conditioning.uncond
        if uncond is None and n == 1:  # a UNet batch of one rounds differently on CPU: run it as two
            latents, contexts = latents.repeat(2, 1, 1, 1), contexts.repeat(2, 1, 1)
            specs = specs + specs  # the copy draws from generators of its own: the frame's stay whole
        generators = self.conditioning.step_noise(specs, begin)
        sampler = self.pipe.new_sampler(s.sampler, s.steps, begin, spacing=s.spacing)
        uncond = None if uncond is None else uncond.expand(latents.shape[0], -1, -1)  # (n, 77, C)
        kept: list[torch.Tensor] = []

        def on_step(i: int, x: torch.Tensor) -> None:
            if keep is not None and begin + i == keep:
                kept.append(x.clone())

        out = self.pipe.denoise(
            latents, contexts, uncond, sampler, sampler.timesteps[begin:], s.guidance, generators,
            progress=self.progress, on_step=on_step,
        )  # fmt: skip
        self.unet_steps += n * (s.steps - begin)
        return out[:n], (kept[0][:n] if kept else None)

    def _finish(self, job: FrameJob, latents: torch.Tensor, begin: int) -> RenderedFrame:
        image = tensor_to_images(self.pipe.decode_latents(latents))[0]  # one frame at a time: batch-invariant
        entry = {"image": torch.from_numpy(np.asarray(image).copy()), "latents": latents}
        if is_keyframe(job.spec) and job.spec.left in self.starts.branch_latents:
            entry["branch"] = self.starts.branch_latents[job.spec.left]
        self.cache.put(job.key, entry)
        return RenderedFrame(job.spec, image, latents, job.key, begin, cached=False)

    def _from_cache(self, job: FrameJob, previous: bool = False) -> RenderedFrame | None:
        """The cached frame of `job` (`previous`: a --feedback frame after the first), or None."""
        begin = self.starts.begin(job.spec, previous)
        entry = self.cache.get(job.key)
        if entry is None or (self.starts.share and is_keyframe(job.spec) and "branch" not in entry):
            return None
        device, dtype = self.pipe.device, self.pipe.dtype
        if "branch" in entry:
            self.starts.branch_latents[job.spec.left] = entry["branch"].to(device, dtype)
        image = Image.fromarray(entry["image"].numpy())
        return RenderedFrame(job.spec, image, entry["latents"].to(device, dtype), job.key, begin, cached=True)

    def _render_feedback(self, specs: list[FrameSpec]) -> list[RenderedFrame]:
        """Frame n is img2img from frame n - 1's latents: one frame at a time, in order."""
        frames: list[RenderedFrame] = []
        for spec in tqdm(specs, desc="frames", disable=not self.progress):
            previous = frames[-1] if frames else None
            job = self._job(spec, previous.key if previous else None)
            frame = self._from_cache(job, previous is not None)
            if frame is None:
                frame = self._run([job], previous.latents if previous else None)[0]
            frames.append(frame)
            self.on_frame(frame.image, len(frames), len(specs))
        return frames
