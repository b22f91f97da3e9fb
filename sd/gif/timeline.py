"""Which keyframes, and how much of each, every output frame shows.

Frame f between keyframes i and i + 1 blends them with weight ease((f - f_i) / (f_{i+1} - f_i)); a keyframe's
own frame has weight 0 on it, so every keyframe appears exactly once and no frame repeats at a joint.
- loop: after the last keyframe the animation travels back to the first over `loop_frames` frames (the
  first keyframe itself is not repeated: the GIF's own looping shows it next), so it wraps seamlessly.
(--pingpong plans nothing: animate.py plays the rendered frames back without the two end frames.)
- speeds (e.g. the audio's loudness per frame): within each transition the linear (f - f_i) / (f_{i+1} - f_i)
  is replaced by the paced progress of pacing.py, so loud passages move faster; the easing applies on top.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sd.gif.keyframes import Keyframe
from sd.gif.pacing import paced_progress


@dataclass(frozen=True)
class FrameSpec:
    left: int  # index into the keyframes
    right: int
    weight: float  # 0 shows `left`, 1 would show `right`


def transitions(keyframes: list[Keyframe], loop: bool = False, loop_frames: int | None = None) -> list[tuple]:
    """(left, right, first frame, end frame) of every transition, the way back of a loop included."""
    stops = [k.frame for k in keyframes]  # (K,) strictly increasing, from 0
    segments = [(i, i + 1, stops[i], stops[i + 1]) for i in range(len(stops) - 1)]
    if loop and len(keyframes) > 1:
        gap = loop_frames or max(1, round(stops[-1] / (len(stops) - 1)))  # default: the mean keyframe gap
        segments.append((len(stops) - 1, 0, stops[-1], stops[-1] + gap))
    return segments


def plan_frames(
    keyframes: list[Keyframe],
    ease: Callable[[float], float],
    loop: bool = False,
    loop_frames: int | None = None,
    speeds: Sequence[float] | None = None,
) -> list[FrameSpec]:
    """`speeds[f]` (optional, positive, one per frame slot up to the last transition's end) paces each
    transition: see pacing.py."""
    frames = []
    for left, right, start, end in transitions(keyframes, loop, loop_frames):
        if speeds is None:
            progress = [(f - start) / (end - start) for f in range(start, end)]
        else:
            progress = paced_progress(speeds[start:end])
        frames += [FrameSpec(left, right, ease(t)) for t in progress]
    if not loop or len(keyframes) == 1:
        frames.append(FrameSpec(len(keyframes) - 1, len(keyframes) - 1, 0.0))  # the last keyframe, once
    return frames
