"""`python -m sd gif`: keyframed prompts to an animated GIF, an MP4, or a folder of PNG frames.

    python -m sd gif "0: a red circle on a blue background" "24: a blue square on a yellow background"
    python -m sd gif --keyframes prompts.txt --loop --out loop.gif
    python -m sd gif "a red circle" "a blue square" --frames 24 --init-image photo.png --strength 0.6
    python -m sd gif --from-json out.gif.json --out again.gif      # the same file, byte for byte
    python -m sd gif --keyframes keys.txt --audio song.wav --out song.mp4   # loudness paces it; the MP4 has the song
    python -m sd gif "a red circle on a blue background" --video clip.mp4 --video-strength 0.5   # clip's fps/frames

Keyframe lines are `FRAME: PROMPT` or `FRAME seed=SEED: PROMPT`, the first at frame 0. Without a seed a
keyframe's noise comes from --seed plus its frame number. With --frames N the arguments are plain
prompts spread evenly over N frames. Frames are cached in --cache-dir by a hash of what makes them, so
an interrupted run resumes and a re-run with another --fps, --out format, --pixelate or --scale only
re-encodes.
"""

from __future__ import annotations

import argparse
import functools
import re
import time
from pathlib import Path

from sd.cli.model_option import PREDICTION_HELP, SPACING_HELP, add_model_option, apply_model_option
from sd.errors import UserError
from sd.gif.easing import EASINGS
from sd.gif.keyframes import parse_keyframes, spread_prompts
from sd.gif.settings import (
    ATTENTION_INTERPOLATIONS,
    FRAME_SPACINGS,
    GIF_SAMPLERS,
    TEXT_INTERPOLATIONS,
    GifSettings,
    with_model_defaults,
)
from sd.gif.sidecar import read_sidecar
from sd.gif.writers import gif_duration_ms
from sd.paths import DEFAULT_CHECKPOINT, FRAME_CACHE
from sd.samplers.base import PREDICTION_TYPES
from sd.samplers.spacing import SPACINGS

DEFAULTS = GifSettings()
KEYFRAME_LINE = re.compile(r"^\s*\d+(\s+seed\s*=\s*\d+)?\s*:")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("gif", help="animate keyframed prompts into a GIF/MP4", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("keyframes", nargs="*", help="keyframe lines 'FRAME: PROMPT' (or plain prompts with --frames)")
    p.add_argument("--keyframes", dest="keyframes_file", metavar="FILE", help="a file of keyframe lines")
    p.add_argument("--frames", type=int, help="spread plain prompts evenly over this many frames")
    p.add_argument("--from-json", metavar="SIDECAR", help="reproduce the run recorded in a sidecar JSON")
    p.add_argument("--out", help="output .gif, .mp4, or a folder for PNG frames (default outputs/animation.gif)")
    p.add_argument("--checkpoint", help=f"an SD 1.x/2.x file or diffusers folder (default {DEFAULT_CHECKPOINT.name})")
    p.add_argument("--prediction-type", choices=PREDICTION_TYPES, help=PREDICTION_HELP)
    add_model_option(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--cache-dir", default=str(FRAME_CACHE), help=f"frame cache (default {FRAME_CACHE})")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the frame cache")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    g = p.add_argument_group("generation")
    g.add_argument("--negative", dest="negative_prompt", help="negative prompt for every frame")
    g.add_argument("--seed", type=int, help=f"base seed: keyframe seed = SEED + frame (default {DEFAULTS.seed})")
    own = " unless the model has its own (a distilled one)"
    g.add_argument("--steps", type=int, help=f"denoising steps per keyframe (default {DEFAULTS.steps}{own})")
    g.add_argument("--sampler", help=f"{', '.join(GIF_SAMPLERS)} (default {DEFAULTS.sampler}{own})")
    g.add_argument("--spacing", choices=SPACINGS, help=SPACING_HELP)
    g.add_argument("--guidance", type=float, help=f"classifier-free guidance (default {DEFAULTS.guidance}{own})")
    g.add_argument("--width", type=int, help="multiple of 8 (default: the model's size)")
    g.add_argument("--height", type=int, help="multiple of 8 (default: the model's size)")
    g.add_argument("--batch", type=int, help="frames per UNet call; the same pixels at any --batch (default: "
                   "as many as fill 2 UNet rows: 1 frame guided, 2 unguided)")  # fmt: skip
    g.add_argument("--lora", dest="loras", action="append", metavar="FILE[:SCALE]",
                   help="apply a LoRA (diffusers or kohya file) at SCALE (default 1); repeat to stack")  # fmt: skip

    i = p.add_argument_group("interpolation")
    i.add_argument("--easing", choices=list(EASINGS), help=f"(default {DEFAULTS.easing})")
    i.add_argument("--text-interp", choices=TEXT_INTERPOLATIONS, help=f"(default {DEFAULTS.text_interp})")
    i.add_argument("--fixed-latent", action="store_true", default=None, help="one noise for all frames")
    i.add_argument("--loop", action="store_true", default=None, help="travel back to the first keyframe")
    i.add_argument("--loop-frames", type=int, help="frames of the way back (default: the mean keyframe gap)")
    i.add_argument("--pingpong", action="store_true", default=None, help="play forward, then backward")
    i.add_argument("--init-image", help="every frame is img2img from this image")
    i.add_argument("--strength", type=float, help=f"img2img strength (default {DEFAULTS.strength})")
    i.add_argument("--feedback", action="store_true", default=None, help="each frame is img2img from the last one")
    i.add_argument("--no-share", dest="share", action="store_false", default=None,
                   help="denoise every frame from its own noise (no trajectory sharing)")  # fmt: skip
    i.add_argument("--branch", type=float, help=f"fraction of steps in-betweens share (default {DEFAULTS.branch})")
    i.add_argument("--max-jump", type=float, help="insert frames where a step is above this (mean |diff|, 0-255)")
    i.add_argument("--max-frames", type=int, help=f"cap on frames (default {DEFAULTS.max_frames})")
    i.add_argument("--adain", action="store_true", default=None,
                   help="in-betweens start with their keyframes' per-channel latent statistics (DiffMorpher's AdaIN)")
    i.add_argument("--frame-spacing", choices=FRAME_SPACINGS,
                   help="even: blend weights that make consecutive frames equally far apart, explored with --probes "
                   f"renders per transition (default {DEFAULTS.frame_spacing})")  # fmt: skip
    i.add_argument("--probes", type=int, help=f"--frame-spacing even: probe in-betweens per transition "
                   f"(default {DEFAULTS.probes})")  # fmt: skip
    i.add_argument("--snap", type=float, help="--frame-spacing even: show a probe instead of rendering a frame "
                   f"within this share of a step of its place, 0 to 0.5; fewer renders, less even (default "
                   f"{DEFAULTS.snap:g}; a distilled student carries its own)")  # fmt: skip
    i.add_argument("--rounds", type=int, help="--frame-spacing even: render the in-betweens in this many rounds, "
                   f"each respaced with what the rounds before showed (default {DEFAULTS.rounds}; a distilled "
                   "student carries its own)")  # fmt: skip
    i.add_argument("--attention", choices=ATTENTION_INTERPOLATIONS,
                   help="attention interpolation (AID): in-betweens also attend to their keyframes' keys and values, "
                   f"outer or inner form (default {DEFAULTS.attention})")  # fmt: skip
    i.add_argument("--attention-fraction", type=float, metavar="F", help="--attention: the first F of the steps "
                   f"an in-between runs (default {DEFAULTS.attention_fraction:g})")  # fmt: skip
    i.add_argument("--attention-budget-mb", type=float, metavar="MIB", help="--attention: cap on the keyframes' "
                   "captured keys and values; the cheapest layers that fit (default: every attention layer)")

    m = p.add_argument_group("audio and video")
    m.add_argument("--audio", metavar="FILE", help="its loudness paces each transition; an .mp4 output carries it")
    m.add_argument("--audio-smoothing", type=float, metavar="SECONDS",
                   help=f"smoothing of the loudness (Gaussian sigma, default {DEFAULTS.audio_smoothing:g} s)")
    m.add_argument("--video", metavar="FILE", help="frame n is img2img from the clip's frame at the same time; "
                   "default --fps is the clip's, default --frames its frame count")
    m.add_argument("--video-strength", type=float, help=f"img2img strength (default {DEFAULTS.video_strength})")

    o = p.add_argument_group("output")
    o.add_argument("--fps", type=float, help=f"frames per second (default {DEFAULTS.fps:g})")
    o.add_argument("--dither", action="store_true", default=None, help="Floyd-Steinberg dithering in the GIF")
    o.add_argument("--palette", choices=("shared", "per-frame"), help="GIF palette (default shared)")
    o.add_argument("--pixelate", type=int, metavar="WIDTH", help="pixel-art look: a grid WIDTH pixels wide")
    o.add_argument("--colors", type=int, help=f"palette size for --pixelate (default {DEFAULTS.colors})")
    o.add_argument("--scale", type=int, help="nearest-neighbour upscale of the output (default 1)")
    p.set_defaults(func=run)


SETTING_ARGS = [f for f in GifSettings.__dataclass_fields__ if not f.endswith("_sha256")]


def keyframes_and_settings(args: argparse.Namespace):
    given = {k: getattr(args, k) for k in SETTING_ARGS if getattr(args, k, None) is not None}
    if args.from_json:
        if args.keyframes or args.keyframes_file or args.frames is not None or given:
            raise UserError("--from-json takes the keyframes and settings from the sidecar; pass only --out, "
                            "--checkpoint, --prediction-type, --cache-dir or --overwrite with it")  # fmt: skip
        keyframes, settings, record = read_sidecar(args.from_json)
        return keyframes, settings, record.get("output"), record["checkpoint"]
    if args.keyframes_file and args.keyframes:
        raise UserError("give keyframes either as arguments or with --keyframes FILE, not both")
    if args.keyframes_file:
        path = Path(args.keyframes_file)
        if not path.is_file():
            raise UserError(f"{path}: no such keyframes file")
        keyframes = parse_keyframes(path.read_text(encoding="utf-8"), source=str(path))
    elif not args.keyframes:
        raise UserError("no keyframes: pass lines like '0: a red circle' or --keyframes FILE")
    elif args.frames is not None or (args.video and not all(KEYFRAME_LINE.match(k) for k in args.keyframes)):
        frames = args.frames if args.frames is not None else video_info(args.video)[0]
        prompts = args.keyframes * 2 if args.video and len(args.keyframes) == 1 else args.keyframes  # the whole clip
        keyframes = spread_prompts(prompts, frames)
    else:
        keyframes = parse_keyframes("\n".join(args.keyframes), source="keyframe arguments")
    from sd.lora.spec import parse_lora_spec  # torch: imported once the arguments have parsed

    loras = [parse_lora_spec(text) for text in given.get("loras", [])]  # FILE[:SCALE] -> the sidecar's entries
    given["loras"] = [{"path": spec.path, "scale": spec.scale, "sha256": None} for spec in loras]
    if args.video and args.fps is None:  # the output keeps the clip's frame rate unless told otherwise
        given["fps"] = video_info(args.video)[1]
    return keyframes, GifSettings(**given), None, None


@functools.cache  # --frames and --fps may both default from the clip: decode it once
def video_info(path: str) -> tuple[int, float]:
    """(frame count, fps) of a clip: the defaults of --frames and --fps with --video."""
    from sd.video.reader import read_video

    clip = read_video(path)
    return len(clip.frames), clip.fps


def run(args: argparse.Namespace) -> int:
    from sd.gif.animate import animate  # torch and the model: only once the arguments have parsed
    from sd.loading.student import model_defaults

    start = time.perf_counter()
    keyframes, settings, recorded_out, recorded_checkpoint = keyframes_and_settings(args)
    out = Path(args.out or recorded_out or "outputs/animation.gif")
    apply_model_option(args, fallback=(recorded_checkpoint or {}).get("path"))  # a sidecar's model before the default
    checkpoint = args.checkpoint
    defaults = None if args.from_json else model_defaults(checkpoint)
    given = {k for k in ("sampler", "steps", "guidance", "snap", "rounds") if getattr(args, k) is not None}
    settings = with_model_defaults(settings, defaults, given)  # a distilled model's own, where none was given
    prediction_type = args.prediction_type or (recorded_checkpoint or {}).get("prediction_type")
    out.parent.mkdir(parents=True, exist_ok=True)
    expected = (recorded_checkpoint or {}).get("weights_sha256")
    result = animate(
        keyframes, out, settings, checkpoint=checkpoint, cache_dir=None if args.no_cache else args.cache_dir,
        overwrite=args.overwrite, progress=not args.quiet, expected_weights=expected, prediction_type=prediction_type,
    )  # fmt: skip
    print("smoothness (mean |frame difference|, 0-255, per step; jump ratio = max / median step):")
    for stats in result.smoothness:
        print(stats.line())
    seconds = time.perf_counter() - start
    timing = f"{gif_duration_ms(settings.fps)} ms each" if out.suffix.lower() == ".gif" else f"{settings.fps:g} fps"
    print(f"wrote {out} ({len(result.frames)} frames, {timing}) and "
          f"{result.outputs[1]}; {result.unet_steps} UNet steps, {result.cached_frames} frames from the cache, "
          f"{seconds:.1f}s")  # fmt: skip
    return 0
