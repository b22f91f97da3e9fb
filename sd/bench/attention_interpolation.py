"""`python -m sd.bench.attention_interpolation`: one transition rendered with and without attention interpolation.

Two keyframes `frames` apart, the GIF defaults (GifSettings: dpmpp_2m, 20 steps, guidance 5, smooth easing, lerped
text, slerped noise, trajectory sharing from step 16), then the same frames with AID's attention interpolation
(sd/gif/attention_interpolation.py). Per variant: the jump ratio (largest / median step, smoothness.py), the pixel
path length over the direct distance between the keyframes, and UNet frame-steps; a contact sheet, one row each.

The frames are put together here the way sd/gif/renderer.py does (keyframe noise from seed + frame, slerp, lerp,
the branch step); without interpolation they are the renderer's frames bit for bit (tests/sd/bench).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch
from matplotlib.figure import Figure
from PIL import Image

from sd.atomic_output import atomic_output
from sd.gif.attention_interpolation import AttentionInterpolation, capture_keyframes, new_store, render_inbetweens
from sd.gif.easing import EASINGS
from sd.gif.interpolation import INTERPOLATIONS, slerp
from sd.gif.keyframes import Keyframe
from sd.gif.settings import GifSettings
from sd.gif.smoothness import frame_distance, step_distances, transition_stats
from sd.gif.timeline import FrameSpec, plan_frames
from sd.images import tensor_to_images
from sd.loading.checkpoint import load_checkpoint
from sd.paths import DEFAULT_CHECKPOINT
from sd.pipeline import StableDiffusionPipeline, generators_for
from sd.samplers.noise import randn_tensor

PROMPTS = (
    "a large red circle in the center on a blue background",
    "a large yellow star in the center on a black background",
)
NO_INTERPOLATION = AttentionInterpolation(fraction=0.0)


@dataclass
class Transition:
    label: str
    images: list[Image.Image]  # keyframe A, the in-betweens, keyframe B
    specs: list[FrameSpec]
    unet_steps: int  # sampler steps summed over frames (a guided step counts once)

    @property
    def jump_ratio(self) -> float:
        return transition_stats(self.specs, self.images)[0].jump_ratio

    @property
    def detour(self) -> float:
        """Pixel path length (sum of mean |step|) over the keyframes' own distance: 1 for a straight crossfade."""
        return sum(step_distances(self.images)) / frame_distance(self.images[0], self.images[-1])


def render_transition(
    pipe: StableDiffusionPipeline,
    prompts: tuple[str, str],
    frames: int,
    settings: GifSettings,
    aid: AttentionInterpolation = NO_INTERPOLATION,
    label: str = "",
) -> Transition:
    """Keyframes 0: prompts[0] and `frames`: prompts[1], every frame between, as the GIF driver plans and starts
    them; the in-betweens interpolate attention with `aid` (fraction 0: not at all)."""
    s = settings
    keyframes = [Keyframe(0, prompts[0]), Keyframe(frames, prompts[1])]
    specs = plan_frames(keyframes, EASINGS[s.easing])
    resolution = pipe.checkpoint.vae.config.resolution
    latent_size = pipe.latent_size(s.width or resolution, s.height or resolution)
    shape = (1, pipe.checkpoint.unet.config.in_channels, *latent_size)
    noises = [randn_tensor(shape, generators_for(s.keyframe_seed(k), 1), pipe.dtype, pipe.device) for k in keyframes]
    sigma = pipe._sampler(s.sampler, s.steps, 0.0).init_noise_sigma
    contexts = pipe.encode_prompt(list(prompts))  # (2, 77, C)
    uncond = pipe.encode_prompt([s.negative_prompt]) if s.guidance > 1.0 else None  # (1, 77, C)
    begin = min(round(s.steps * s.branch), s.steps - 1) if s.share else 0  # the renderer's branch step

    store = new_store(pipe, s, aid, shape[-2:], inbetween_begin=begin, keyframes=2)
    ends, branch = [], []
    for i in range(2):  # one keyframe per denoising, as the renderer's default batch of 1 runs them
        out, kept = capture_keyframes(
            pipe, s, store, [i], noises[i] * sigma, contexts[i : i + 1], uncond, begin or None
        )
        ends.append(out)
        branch.append(kept)

    between = [spec for spec in specs if spec.weight > 0.0]
    text = INTERPOLATIONS[s.text_interp]
    latents = []
    for i in range(0, len(between), s.batch):
        chunk = between[i : i + s.batch]
        if s.share:
            starts = torch.cat([slerp(branch[0], branch[1], spec.weight) for spec in chunk])  # (n, 4, h, w)
        else:
            starts = torch.cat([slerp(noises[0], noises[1], spec.weight) * sigma for spec in chunk])
        texts = torch.cat([text(contexts[:1], contexts[1:], spec.weight) for spec in chunk])  # (n, 77, C)
        latents.append(render_inbetweens(pipe, s, store, chunk, starts, texts, uncond, begin, aid))
    decoded = [ends[0]] + list(torch.cat(latents).split(1)) + [ends[1]]  # (1, 4, h, w) each, in frame order
    images = [tensor_to_images(pipe.decode_latents(x))[0] for x in decoded]  # one at a time, as the renderer
    return Transition(label, images, specs, 2 * s.steps + len(between) * (s.steps - begin))


def contact_sheet(rows: list[Transition], path: Path, overwrite: bool = False) -> None:
    """One row of frames per variant, titled with its jump ratio, detour and cost."""
    columns = len(rows[0].images)
    fig = Figure(figsize=(0.62 * columns + 0.3, 0.85 * len(rows) + 0.3))
    axes = fig.subplots(len(rows), columns, squeeze=False)
    for r, row in enumerate(rows):
        for c, image in enumerate(row.images):
            ax = axes[r, c]
            ax.imshow(image.convert("RGB"), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_title(f"{row.label}: jump ratio {row.jump_ratio:.2f}, detour {row.detour:.2f}, "
                             f"{row.unet_steps} UNet steps", fontsize=6, loc="left")  # fmt: skip
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.005, top=1 - 0.25 / fig.get_figheight(), hspace=0.45)
    with atomic_output(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=150)


def variants(fraction: float) -> dict[str, tuple[dict, AttentionInterpolation]]:
    """label -> (GifSettings changes, interpolation): today's default and per-frame rendering as references, AID as
    its code runs it (fused, the first `fraction` of the steps) on both, and the unfused outer form over every step."""
    outer, inner = (
        AttentionInterpolation("outer", fraction=fraction),
        AttentionInterpolation("inner", fraction=fraction),
    )
    unfused_self = AttentionInterpolation("outer", fused=False, fraction=1.0, kinds=("self",))
    unfused = AttentionInterpolation("outer", fused=False, fraction=1.0)
    per_frame = {"share": False}
    return {
        "today (share from step 16)": ({}, NO_INTERPOLATION),
        "AID outer, share": ({}, outer),
        "AID inner, share": ({}, inner),
        "per frame (no share)": (per_frame, NO_INTERPOLATION),
        "AID outer, per frame": (per_frame, outer),
        "AID inner, per frame": (per_frame, inner),
        "unfused outer, all steps, share": ({}, unfused),
        "unfused outer, self, all steps, per frame": (per_frame, unfused_self),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--frames", type=int, default=16, help="keyframe B's frame number (frames - 1 in-betweens)")
    parser.add_argument("--fraction", type=float, default=0.5, help="interpolated share of a frame's steps")
    parser.add_argument("--batch", type=int, default=1, help="in-betweens per UNet call (the GIF driver's --batch)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench/attention-interpolation.png"))
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    pipe = StableDiffusionPipeline(load_checkpoint(args.checkpoint))
    rows = []
    for label, (changes, aid) in variants(args.fraction).items():
        settings = GifSettings(seed=args.seed, batch=args.batch, **changes)
        rows.append(render_transition(pipe, PROMPTS, args.frames, settings, aid, label))
        row = rows[-1]
        print(f"{label:42s} jump ratio {row.jump_ratio:6.2f}  detour {row.detour:5.2f}  UNet steps {row.unet_steps}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(rows, args.out, args.overwrite)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
