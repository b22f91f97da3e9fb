"""The Python API of the GIF driver: keyframes and settings in, frames out, files written.

    from sd.gif.animate import animate
    result = animate("0: a red circle on a blue background\\n24: a blue square on a yellow background",
                     out="out.gif", settings=GifSettings(seed=3, loop=True))
    result.frames  # PIL images in play order

Order of work: plan the frames (timeline.py, paced by the audio's loudness when there is audio), render
them (renderer.py, cached on disk; with --frame-spacing even, at the weights that make steps even: spacing.py),
insert in-betweens where a step is above --max-jump, measure
smoothness, pixelate/scale, mirror for --pingpong, then write the output and its JSON sidecar, each under a
temporary name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from sd.checkpoint_choice import resolve_checkpoint
from sd.errors import UserError
from sd.file_hash import file_sha256
from sd.gif.easing import EASINGS
from sd.gif.frame_cache import FrameCache
from sd.gif.keyframes import Keyframe, parse_keyframes
from sd.gif.pixelate import pixelate
from sd.gif.renderer import DenoiseContext, FrameRenderer, OnFrame, RenderedFrame
from sd.gif.settings import GifSettings
from sd.gif.sidecar import sidecar_path, write_sidecar
from sd.gif.smoothness import TransitionStats, midpoints, step_distances, transition_stats
from sd.gif.spacing import render_evenly
from sd.gif.timeline import FrameSpec, plan_frames, transitions
from sd.gif.writers import output_format, write_gif, write_mp4, write_png_folder
from sd.loading.checkpoint import load_checkpoint
from sd.loading.fingerprint import weights_sha256
from sd.lora.spec import LoraSpec, load_specs
from sd.lora.stack import applied_loras
from sd.paths import FRAME_CACHE
from sd.pipeline import StableDiffusionPipeline


@dataclass
class Animation:
    frames: list[Image.Image]  # in play order, as written
    specs: list[FrameSpec]  # in play order
    smoothness: list[TransitionStats]
    unet_steps: int  # sampler steps run for this call (cached frames cost none)
    cached_frames: int
    inputs: dict = field(default_factory=dict)  # sha256 of each input file: init_image, audio, video, loras
    outputs: list[Path] = field(default_factory=list)
    record: dict = field(default_factory=dict)  # what the sidecar holds


def check_output(out: Path, overwrite: bool) -> None:
    output_format(out)
    for path in (out, sidecar_path(out)):
        if path.exists() and not overwrite:
            raise UserError(f"{path}: already exists; choose another --out or pass --overwrite")
    if not out.parent.exists():
        raise UserError(f"{out.parent}: no such folder for the output")


def verified_sha256(path: str, recorded: str | None, what: str) -> str:
    """The sha256 of the file at `path`, which must exist and, when a sidecar recorded a hash, be that file."""
    if not Path(path).is_file():
        raise UserError(f"{path}: no such {what}")
    digest = file_sha256(path)
    if recorded not in (None, digest):
        raise UserError(f"{path}: not the {what} this run was made with (sha256 differs)")
    return digest


INPUT_FILES = {"init_image": "init image", "audio": "audio file", "video": "video file"}  # setting -> what it is


def input_provenance(settings: GifSettings) -> dict:
    """The sha256 of every input file the settings name, each checked to exist and, where a sidecar recorded a
    hash (the settings' *_sha256 fields), to be that file: {"init_image": ..., "audio": ..., "video": ...,
    "loras": [...]} for those present."""
    found = {}
    for name, what in INPUT_FILES.items():
        path = getattr(settings, name)
        if path is not None:
            found[name] = verified_sha256(path, getattr(settings, f"{name}_sha256"), what)
    loras = [verified_sha256(e["path"], e.get("sha256"), "LoRA") for e in settings.loras]
    return found | ({"loras": loras} if loras else {})


def with_provenance(settings: GifSettings, inputs: dict) -> GifSettings:
    """A copy of `settings` with the input files' hashes in place: what the sidecar records and the keys hash."""
    hashes = {f"{name}_sha256": inputs[name] for name in INPUT_FILES if name in inputs}
    loras = [{"path": e["path"], "scale": float(e.get("scale", 1.0)), "sha256": sha}
             for e, sha in zip(settings.loras, inputs.get("loras", []), strict=True)]  # fmt: skip
    return replace(settings, **hashes, loras=loras)


def audio_speeds(settings: GifSettings, keyframes: list[Keyframe]) -> list[float] | None:
    """Per-frame speeds from the audio's smoothed loudness (sd/audio/energy.py), or None without audio."""
    if settings.audio is None:
        return None
    from sd.audio.energy import frame_energy
    from sd.audio.load import load_audio

    slots = transitions(keyframes, settings.loop, settings.loop_frames)
    length = max([end for *_, end in slots], default=1)
    return frame_energy(load_audio(settings.audio), settings.fps, length, settings.audio_smoothing).tolist()


def _refine(renderer: FrameRenderer, frames: list[RenderedFrame], settings: GifSettings) -> list[RenderedFrame]:
    """Insert halfway frames into every step above --max-jump until none is left or the cap is reached."""
    while len(frames) < settings.max_frames:
        specs = [f.spec for f in frames]
        distances = step_distances([f.image for f in frames], wrap=settings.loop)
        new = midpoints(specs, distances, settings.max_jump, budget=settings.max_frames - len(frames))
        if not new:
            break
        rendered = renderer.render([spec for _, spec in new])
        for (position, _), frame in sorted(zip(new, rendered, strict=True), key=lambda x: -x[0][0]):
            frames.insert(position + 1, frame)
    return frames


def animate(
    keyframes: str | list[Keyframe],
    out: str | Path | None = None,
    settings: GifSettings | None = None,
    *,
    checkpoint: str | Path | None = None,
    pipe: StableDiffusionPipeline | None = None,
    cache_dir: str | Path | None = FRAME_CACHE,
    overwrite: bool = False,
    progress: bool = True,
    expected_weights: str | None = None,
    prediction_type: str | None = None,
    on_frame: OnFrame | None = None,
    denoising: DenoiseContext | None = None,
) -> Animation:
    """Render the animation of `keyframes` (text like '0: a prompt' or Keyframe objects); write `out`
    (.gif, .mp4, or a folder of PNGs) and its sidecar `out`.json when given. Pass a loaded `pipe` to
    reuse it, else `checkpoint` (default: the shipped model) is loaded (`prediction_type` as for
    load_checkpoint). `expected_weights` (a sidecar's fingerprint) refuses to run on other weights.
    `on_frame(image, done, total)` is called after each generated frame; an exception raised from it
    stops the run before anything is written. `denoising` wraps each batch's denoising (renderer.py's seam)."""
    settings = settings or GifSettings()
    if isinstance(keyframes, str):
        keyframes = parse_keyframes(keyframes)
    settings.validate()
    if out is not None:
        out = Path(out)
        check_output(out, overwrite)
    inputs = input_provenance(settings)
    settings = with_provenance(settings, inputs)  # the caller's settings stay as they were given
    speeds = audio_speeds(settings, keyframes)
    lora_specs = [LoraSpec(e["path"], e["scale"]) for e in settings.loras]
    if pipe is None:
        checkpoint = resolve_checkpoint(checkpoint)
        pipe = StableDiffusionPipeline(load_checkpoint(checkpoint, prediction_type=prediction_type))
    weights = weights_sha256(pipe.checkpoint)
    if expected_weights not in (None, weights):
        raise UserError(
            f"{checkpoint or pipe.checkpoint.name}: not the weights this run was made with (sha256 "
            f"{weights[:12]}..., the sidecar says {expected_weights[:12]}...); pass the right --checkpoint"
        )

    cache = FrameCache(cache_dir)
    # LoRAs are merged for this call only (a caller's pipe is handed back unchanged); `weights` above is the
    # checkpoint's own fingerprint, and the frame keys add each LoRA's file hash and scale.
    with applied_loras(pipe.checkpoint, load_specs(lora_specs, pipe.checkpoint)):
        renderer = FrameRenderer(pipe, keyframes, settings, weights, cache, progress, on_frame, denoising)
        ease = EASINGS[settings.easing]
        specs = plan_frames(keyframes, ease, loop=settings.loop, loop_frames=settings.loop_frames, speeds=speeds)
        if len(specs) > settings.max_frames:
            raise UserError(f"{len(specs)} frames planned, over --max-frames {settings.max_frames}; raise the cap")
        even = settings.frame_spacing == "even" and not (settings.feedback or settings.video)  # keyframes' in-betweens
        if even:
            frames = render_evenly(renderer, specs, settings.probes, settings.snap, settings.rounds)
        else:
            frames = renderer.render(specs)
        if settings.max_jump is not None:
            frames = _refine(renderer, frames, settings)
    specs = [f.spec for f in frames]
    images = [f.image for f in frames]
    stats = transition_stats(specs, images, wrap=settings.loop)

    if settings.pixelate:
        images = pixelate(images, settings.pixelate, settings.colors, settings.dither)
    if settings.scale > 1:
        images = [im.resize((im.width * settings.scale, im.height * settings.scale), Image.NEAREST) for im in images]
    records = frames
    if settings.pingpong and len(frames) > 2:
        images, specs, records = images + images[-2:0:-1], specs + specs[-2:0:-1], frames + frames[-2:0:-1]

    record = {
        "keyframes": [{"frame": k.frame, "prompt": k.prompt, "seed": k.seed} for k in keyframes],
        "settings": settings.to_dict(),
        "checkpoint": {
            "path": str(checkpoint) if checkpoint else None,
            "name": pipe.checkpoint.name,
            "weights_sha256": weights,
            "prediction_type": pipe.checkpoint.prediction_type,
            "spacing": pipe.timestep_config(settings.sampler, settings.spacing).spacing,  # what ran
        },  # fmt: skip
        "frames": [
            {
                "left": f.spec.left,
                "right": f.spec.right,
                "weight": f.spec.weight,
                "seeds": [renderer.seeds[f.spec.left], renderer.seeds[f.spec.right]],
                "first_step": f.begin,
                "key": f.key,
            }  # fmt: skip
            for f in records
        ],
        "smoothness": [s.__dict__ for s in stats],
    }
    cached = sum(f.cached for f in frames)
    result = Animation(images, specs, stats, renderer.unet_steps, cached, inputs=inputs, record=record)
    if out is not None:
        kind = output_format(out)
        if kind == "gif":
            write_gif(images, out, settings.fps, settings.palette, settings.dither, overwrite=overwrite)
        elif kind == "mp4":
            write_mp4(images, out, settings.fps, overwrite=overwrite, audio=settings.audio)
        else:
            write_png_folder(images, out, overwrite=overwrite)
        write_sidecar(sidecar_path(out), record | {"output": str(out)}, overwrite=overwrite)
        result.outputs = [out, sidecar_path(out)]
    return result
