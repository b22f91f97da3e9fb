"""Which keyframes, and how much of each, every output frame shows.

Frame f between keyframes i and i + 1 blends them with weight ease((f - f_i) / (f_{i+1} - f_i)); a keyframe's
own frame has weight 0 on it, so every keyframe appears exactly once and no frame repeats at a joint.
- loop: after the last keyframe the animation travels back to the first over `loop_frames` frames (the
  first keyframe itself is not repeated: the GIF's own looping shows it next), so it wraps seamlessly.
- pingpong: the frames, then the same frames backwards without the two end frames (a, b, c, b, then a again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sd.errors import UserError
from sd.gif.keyframes import Keyframe


@dataclass(frozen=True)
class FrameSpec:
    left: int  # index into the keyframes
    right: int
    weight: float  # 0 shows `left`, 1 would show `right`


def plan_frames(
    keyframes: list[Keyframe],
    ease: Callable[[float], float],
    loop: bool = False,
    pingpong: bool = False,
    loop_frames: int | None = None,
) -> list[FrameSpec]:
    if loop and pingpong:
        raise UserError("choose --loop or --pingpong, not both (ping-pong already returns to the start)")
    stops = [k.frame for k in keyframes]  # (K,) strictly increasing, from 0
    segments = [(i, i + 1, stops[i], stops[i + 1]) for i in range(len(stops) - 1)]
    if loop and len(keyframes) > 1:
        gap = loop_frames or max(1, round(stops[-1] / (len(stops) - 1)))  # default: the mean keyframe gap
        segments.append((len(stops) - 1, 0, stops[-1], stops[-1] + gap))
    frames = [
        FrameSpec(left, right, ease((f - start) / (end - start)))
        for left, right, start, end in segments
        for f in range(start, end)
    ]
    if not loop or len(keyframes) == 1:
        frames.append(FrameSpec(len(keyframes) - 1, len(keyframes) - 1, 0.0))  # the last keyframe, once
    if pingpong:
        frames += frames[-2:0:-1]
    return frames
