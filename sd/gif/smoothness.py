"""How smooth an animation is, transition by transition, and where it needs more in-between frames.

The distance between two frames is the mean absolute difference of their pixels (0-255). For each
transition (keyframe i to keyframe i + 1, both included) we report the mean and the largest step and the
jump ratio, largest / median: 1 means every step is the same size; a ratio of 5 means one step is a cut
the eye notices. --max-jump X then inserts a frame halfway (in blend weight) into every step above X.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from sd.gif.timeline import FrameSpec


def frame_distance(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("RGB"), dtype=np.float32)
    y = np.asarray(b.convert("RGB"), dtype=np.float32)
    return float(np.abs(x - y).mean())


def step_distances(frames: list[Image.Image], wrap: bool = False) -> list[float]:
    """Distance of frame i to frame i + 1 (and, with `wrap`, of the last frame to the first)."""
    pairs = list(zip(frames, frames[1:] + (frames[:1] if wrap else []), strict=False))
    return [frame_distance(a, b) for a, b in pairs]


@dataclass(frozen=True)
class TransitionStats:
    left: int  # keyframe indices
    right: int
    first_frame: int  # frame index of the left keyframe in the animation
    steps: int  # frame-to-frame steps in the transition
    mean: float
    max: float
    jump_ratio: float  # max / median

    def line(self) -> str:
        return (f"  keyframe {self.left} -> {self.right}  from frame {self.first_frame:>4}  {self.steps:>4} steps  "
                f"mean {self.mean:6.2f}  max {self.max:6.2f}  jump ratio {self.jump_ratio:5.2f}")  # fmt: skip


def transition_stats(specs: list[FrameSpec], distances: list[float]) -> list[TransitionStats]:
    """Group step distances by transition; `distances[i]` is frame i -> i + 1 (wrapping if it is longer)."""
    stops = [i for i, s in enumerate(specs) if s.weight == 0.0] + [len(specs)]
    stats = []
    for a, b in zip(stops, stops[1:], strict=False):
        if b > len(distances) or b == a:
            continue
        steps = distances[a:b]
        median, largest = float(np.median(steps)), max(steps)
        ratio = largest / median if median > 0 else (float("inf") if largest > 0 else 1.0)
        mean = float(np.mean(steps))
        stats.append(TransitionStats(specs[a].left, specs[a].right, a, len(steps), mean, largest, ratio))
    return stats


def position_in(spec: FrameSpec, other: FrameSpec) -> float | None:
    """`other`'s blend weight in `spec`'s transition: the next keyframe is weight 1 of the one before."""
    if (other.left, other.right) == (spec.left, spec.right) and other.weight > spec.weight:
        return other.weight
    if other.weight == 0.0 and other.left == spec.right:
        return 1.0
    return None


def midpoints(
    specs: list[FrameSpec], distances: list[float], max_jump: float, budget: int
) -> list[tuple[int, FrameSpec]]:
    """(position, new spec) for up to `budget` steps above `max_jump`, largest first; position i means
    'between frame i and frame i + 1' (i = last frame: the wrap-around step of a loop)."""
    candidates = sorted((d, i) for i, d in enumerate(distances) if d > max_jump)[::-1]
    out = []
    for _, i in candidates[:budget]:
        spec, following = specs[i], specs[(i + 1) % len(specs)]
        end = position_in(spec, following)
        if end is None or end - spec.weight < 1e-4:  # nothing left to split
            continue
        out.append((i, FrameSpec(spec.left, spec.right, (spec.weight + end) / 2)))
    return sorted(out, key=lambda item: item[0])
