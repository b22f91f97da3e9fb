"""How smooth an animation is, transition by transition, and where it needs more in-between frames.

Two distances, both computed offline (LPIPS's backbone cannot be downloaded here):
- a step, frame i to frame i + 1, is the mean absolute difference of their pixels (0-255), as the GIF
  driver has always printed it;
- a path is measured in CIELAB (cielab.py): the mean over pixels of delta E 1976.

For each transition (keyframe i to keyframe i + 1, both included; n steps d_1..d_n) we report:
- the mean and largest step, and the jump ratio, largest / median: 1 means every step is the same size;
  a ratio of 5 means one step is a cut the eye notices;
- the Gini coefficient of the steps, G = sum_ij |d_i - d_j| / (2 n^2 mean(d)): 0 when all are equal,
  (n - 1) / n when one step holds the whole change. 1 - G is AID's "smoothness" (He et al. 2024);
- the detour, path length / direct distance = sum_i dE(f_i, f_i+1) / dE(f_0, f_n) in CIELAB: 1 for a path
  that never turns back or aside (a pixel crossfade is about 1), 2 when the frames travel twice as far as
  the keyframes are apart.
The crossfade guard (blend_gaps) shows that an in-between is a generation, not a pixel blend of its
keyframes: a crossfade would score perfectly on all three measures above.
--max-jump X inserts a frame halfway (in blend weight) into every step above X.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from sd.cielab import delta_e, image_lab, srgb_to_lab
from sd.gif.timeline import FrameSpec

# Measured by `python -m sd bench morph` (12 pairs x 4 seeds, 720 in-betweens a method): a pixel crossfade's frames
# lie at most 0.048 from the best blend (the 8-bit rounding of the blend itself); generated in-betweens that a blend
# explains better than the nearer keyframe (blend < hold / 2; 246 of 10,800, 12 methods) at least 0.085. The
# threshold sits between the two.
CROSSFADE_THRESHOLD = 0.06


def frame_distance(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("RGB"), dtype=np.float32)
    y = np.asarray(b.convert("RGB"), dtype=np.float32)
    return float(np.abs(x - y).mean())


def step_distances(frames: list[Image.Image], wrap: bool = False) -> list[float]:
    """Distance of frame i to frame i + 1 (and, with `wrap`, of the last frame to the first)."""
    pairs = list(zip(frames, frames[1:] + (frames[:1] if wrap else []), strict=False))
    return [frame_distance(a, b) for a, b in pairs]


def gini(steps: list[float]) -> float:
    """sum_ij |d_i - d_j| / (2 n^2 mean(d)): 0 for equal steps, (n - 1) / n when one step is all the change."""
    d = np.asarray(steps, dtype=np.float64)
    if len(d) < 2 or d.mean() == 0:
        return 0.0
    return float(np.abs(d[:, None] - d[None, :]).sum() / (2 * len(d) ** 2 * d.mean()))


def ratio(part: float, whole: float) -> float:
    """part / whole, with 0 / 0 = 1 (nothing moved: perfectly even, no detour) and x / 0 = inf."""
    return part / whole if whole > 0 else (float("inf") if part > 0 else 1.0)


def detour(labs: list[np.ndarray]) -> float:
    """Path length / direct distance of CIELAB frames (first and last are the keyframes)."""
    path = sum(delta_e(a, b) for a, b in zip(labs, labs[1:], strict=False))
    return ratio(path, delta_e(labs[0], labs[-1]))


@dataclass(frozen=True)
class TransitionStats:
    left: int  # keyframe indices
    right: int
    first_frame: int  # frame index of the left keyframe in the animation
    steps: int  # frame-to-frame steps in the transition
    mean: float
    max: float
    jump_ratio: float  # max / median
    gini: float  # of the steps; 1 - gini is AID's smoothness
    detour: float  # CIELAB path length / direct distance

    def line(self) -> str:
        return (f"  keyframe {self.left} -> {self.right}  from frame {self.first_frame:>4}  {self.steps:>4} steps  "
                f"mean {self.mean:6.2f}  max {self.max:6.2f}  jump ratio {self.jump_ratio:5.2f}  "
                f"gini {self.gini:4.2f}  detour {self.detour:5.2f}")  # fmt: skip


def transition_stats(specs: list[FrameSpec], images: list[Image.Image], wrap: bool = False) -> list[TransitionStats]:
    """Per transition of the frames `images` (planned as `specs`); with `wrap`, the last frame steps to the first."""
    distances = step_distances(images, wrap)
    labs = [image_lab(image) for image in images]
    stops = [i for i, s in enumerate(specs) if s.weight == 0.0] + [len(specs)]
    stats = []
    for a, b in zip(stops, stops[1:], strict=False):
        if b > len(distances) or b == a:
            continue
        steps = distances[a:b]
        median, largest = float(np.median(steps)), max(steps)
        path = [labs[i % len(labs)] for i in range(a, b + 1)]  # keyframe to keyframe, both included
        stats.append(TransitionStats(specs[a].left, specs[a].right, a, len(steps), float(np.mean(steps)), largest,
                                     ratio(largest, median), gini(steps), detour(path)))  # fmt: skip
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


@dataclass(frozen=True)
class BlendGap:
    """How far an in-between is from the nearest pixel blend (1 - alpha) A + alpha B of its keyframes, and from
    the nearer keyframe itself, both as a fraction of dE(A, B) (CIELAB, mean over pixels)."""

    alpha: float  # the best blend's weight, by least squares in sRGB, clipped to [0, 1]
    blend: float  # dE(frame, best blend) / dE(A, B)
    hold: float  # min(dE(frame, A), dE(frame, B)) / dE(A, B)

    def is_crossfade(self, threshold: float = CROSSFADE_THRESHOLD) -> bool:
        """A blend draws it (within `threshold`), and at least twice as closely as the nearer keyframe does: a
        double exposure, not a keyframe held (next to a keyframe, a blend and the keyframe are equally near)."""
        return self.blend < threshold and self.blend < self.hold / 2


def blend_gap(frame: Image.Image, a: Image.Image, b: Image.Image) -> BlendGap:
    """alpha* = <F - A, B - A> / |B - A|^2 over all pixel values (sRGB), then the gaps measured in CIELAB."""
    f, x, y = (np.asarray(im.convert("RGB"), dtype=np.float64) for im in (frame, a, b))
    span = y - x
    alpha = float(np.clip((span * (f - x)).sum() / max((span * span).sum(), 1e-12), 0.0, 1.0))
    lab_f, lab_a, lab_b = srgb_to_lab(f), srgb_to_lab(x), srgb_to_lab(y)
    direct = delta_e(lab_a, lab_b)
    blend = delta_e(lab_f, srgb_to_lab(x + alpha * span))
    hold = min(delta_e(lab_f, lab_a), delta_e(lab_f, lab_b))
    return BlendGap(alpha, ratio(blend, direct), ratio(hold, direct))
