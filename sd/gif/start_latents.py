"""Where a frame's denoising starts: which latents, at which sampler step.

    txt2img (default)   the frame's noise (conditioning.py) times the sampler's initial sigma, at step 0
    --init-image        the encoded image, noised with the frame's noise to step `start` (img2img)
    --feedback          the previous frame's final latents, noised with this frame's noise (img2img)
    --video             the clip's frame at this frame's time, encoded and noised (img2img, --video-strength)
    sharing (default)   an in-between starts at step `branch` from slerp(x_a, x_b, w) of its keyframes' latents
                        at that step, and runs only the remaining steps
    --adain             an in-between's start, any of the above but feedback and video, gets the lerp of its
                        keyframes' starts' per-channel statistics (adain.py)

Trajectory sharing: the keyframes are denoised in full and their latents are kept at step `branch`; the early
steps, which decide the layout, are shared with the keyframes, so a transition costs a fraction of the UNet
evaluations and its frames stay coherent (the idea of latent blending, Lunarring 2022, with one branch point).
"""

from __future__ import annotations

import torch

from sd.gif.adain import adain_between
from sd.gif.conditioning import KeyframeConditioning, is_keyframe
from sd.gif.interpolation import slerp
from sd.gif.settings import GifSettings
from sd.gif.timeline import FrameSpec
from sd.images import image_to_tensor, load_image
from sd.pipeline import StableDiffusionPipeline, generators_for, img2img_start


class StartLatents:
    def __init__(
        self, pipe: StableDiffusionPipeline, settings: GifSettings, conditioning: KeyframeConditioning,
        size: tuple[int, int], keyframes: int,
    ) -> None:  # fmt: skip
        """`size`: (width, height) in pixels; `keyframes`: how many there are."""
        s = self.settings = settings
        self.pipe, self.conditioning, self.size = pipe, conditioning, size
        self.init_latents = None
        self.start = 0  # first step of a frame's own trajectory
        if s.init_image is not None:
            self.init_latents = self.encode(image_to_tensor(load_image(s.init_image), *size))  # (1, 4, h, w)
            self.start = img2img_start(s.steps, s.strength)
        self.feedback_start = img2img_start(s.steps, s.strength)
        self.video = None
        if s.video is not None:
            from sd.video.reader import read_video

            self.video = read_video(s.video)
            self.video_start = min(img2img_start(s.steps, s.video_strength), s.steps - 1)  # at least one step
            self.video_latents: dict[int, torch.Tensor] = {}  # clip frame -> (1, 4, h, w)
        self.share = s.share and not s.feedback and self.video is None and keyframes > 1
        self.branch = min(max(self.start + round((s.steps - self.start) * s.branch), self.start), s.steps - 1)
        self.branch_latents: dict[int, torch.Tensor] = {}  # keyframe index -> (1, 4, h, w) at step `branch`

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """Latents (1, 4, h, w) of an image (1, 3, H, W), sampled with the run's seed (as img2img does)."""
        return self.pipe.encode_image(image, generators_for(self.settings.seed, 1))

    def begin(self, spec: FrameSpec, previous: bool = False) -> int:
        """The first sampler step the frame runs (`previous`: --feedback, after the first frame)."""
        if previous:
            return self.feedback_start
        if self.video is not None:
            return self.video_start
        return self.branch if self.share and not is_keyframe(spec) else self.start

    def noised(self, clean: torch.Tensor, spec: FrameSpec, begin: int) -> torch.Tensor:
        """`clean` latents (1, 4, h, w) noised with the frame's noise to step `begin`: img2img's start."""
        s = self.settings
        sampler = self.pipe.new_sampler(s.sampler, s.steps, begin, spacing=s.spacing)
        return sampler.add_noise(clean, self.conditioning.noise(spec), sampler.timesteps[begin : begin + 1])

    def latents(
        self, spec: FrameSpec, previous: torch.Tensor | None = None, video_frame: int | None = None
    ) -> torch.Tensor:
        """The latents (1, 4, h, w) the frame starts from, at step begin(spec, previous is not None)."""
        begin = self.begin(spec, previous is not None)
        if previous is not None:  # --feedback: img2img from the previous frame's latents
            return self.noised(previous, spec, begin)
        if video_frame is not None:
            return self.noised(self.clip_latents(video_frame), spec, begin)
        if is_keyframe(spec):
            return self.from_inputs(spec, begin)
        if self.share:
            a, b = self.branch_latents[spec.left], self.branch_latents[spec.right]  # 2 x (1, 4, h, w)
            z = slerp(a, b, spec.weight)  # (1, 4, h, w) at step `branch`
        else:
            z = self.from_inputs(spec, begin)
        if not self.settings.adain:
            return z
        if not self.share:  # the keyframes' own starts at the same step
            a, b = (self.from_inputs(FrameSpec(i, i, 0.0), begin) for i in (spec.left, spec.right))
        return adain_between(z, a, b, spec.weight)

    def from_inputs(self, spec: FrameSpec, begin: int) -> torch.Tensor:
        """The frame's own start: its noise, or the init image noised with it (no sharing, no AdaIN)."""
        if self.init_latents is not None:
            return self.noised(self.init_latents, spec, begin)
        s = self.settings
        sigma = self.pipe.new_sampler(s.sampler, s.steps, spacing=s.spacing).init_noise_sigma
        return self.conditioning.noise(spec) * sigma

    def clip_latents(self, index: int) -> torch.Tensor:
        """The encoded (1, 4, h, w) frame `index` of the --video clip, encoded once."""
        if index not in self.video_latents:
            self.video_latents[index] = self.encode(image_to_tensor(self.video.frames[index], *self.size))
        return self.video_latents[index]
