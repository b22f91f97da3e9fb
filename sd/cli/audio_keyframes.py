"""`python -m sd audio-keyframes song.wav --fps 12`: print a keyframe template with a keyframe at every onset.

    python -m sd audio-keyframes song.wav --fps 12 > keys.txt     # edit the prompts, then:
    python -m sd gif --keyframes keys.txt --audio song.wav --fps 12 --out song.mp4

Onsets come from the percussive part of the audio (drums, clicks), the harmonic part (notes, chords), or
both (harmonic/percussive separation, then onset detection on each); an onset at t seconds is frame
round(t * fps). The last line is the last frame of the audio, so the animation lasts as long as the song.
"""

from __future__ import annotations

import argparse

from sd.audio.load import load_audio
from sd.audio.onsets import COMPONENTS, keyframe_template
from sd.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("audio-keyframes", help="print keyframe frames at the onsets of an audio file",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("audio", help="an audio file (wav, flac, ogg, mp3)")
    p.add_argument("--fps", type=float, default=12.0, help="frames per second of the animation (default 12)")
    p.add_argument("--component", choices=COMPONENTS, default="percussive", help="which part's onsets")
    p.add_argument("--min-gap", type=int, default=1, help="fewest frames between two keyframes (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.fps > 0:
        raise UserError(f"--fps {args.fps} must be positive")
    audio = load_audio(args.audio)
    print(keyframe_template(audio, args.fps, args.component, args.min_gap, source=args.audio), end="")
    return 0
