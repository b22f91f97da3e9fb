"""Wander: which in-betweens of a shapes transition leave the way between their two keyframes.

The judge (classifier.py) reads shape, colour, background, size and position off every frame, the
keyframes included, so its own mistakes on a keyframe do not count against the in-betweens. An in-between
is off the way when any of these holds:
- shape or size: the judge reads a value that it reads on neither keyframe;
- colour of the shape, or of the background: the judge reads a named colour whose CIELAB lies farther than
  COLOUR_TOLERANCE from the segment between the colours it reads on the keyframes (so orange between red and
  yellow is on the way, 9.1 from that segment; teal between blue and black is not, 61.9);
- position: the judge's position lies farther than POSITION_TOLERANCE pixels from the segment between the
  keyframes' positions (from top left to bottom right, the centre is on the way; top right is not);
- the background as measured, needing no judge: the median CIELAB of the frame's 2-pixel border lies
  farther than COLOUR_TOLERANCE from the segment between the keyframes' measured backgrounds.
Each tolerance is half the gap between the two nearest named values (blue and purple, 27.9 apart; the centre
and a corner, 18.4 px apart): a frame farther off is nearer to being something else than to the way.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from sd.cielab import image_lab, srgb_to_lab
from sd.data.vocabulary import COLOURS, POSITIONS
from sd.eval.classifier import ShapesClassifier

NAMED_LAB = {name: srgb_to_lab(np.array(rgb)) for name, rgb in COLOURS.items()}


def _nearest_gap(values: list[np.ndarray]) -> float:
    return min(float(np.linalg.norm(a - b)) for i, a in enumerate(values) for b in values[i + 1 :])


COLOUR_TOLERANCE = _nearest_gap(list(NAMED_LAB.values())) / 2  # 13.9 delta E
POSITION_TOLERANCE = _nearest_gap([np.array(p) for p in POSITIONS.values()]) / 2  # 9.2 pixels at 64x64
BORDER = 2  # pixels of the frame's edge that show only background (no shape reaches them)


def segment_distance(point: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance from `point` to the segment from `a` to `b`."""
    span = b - a
    t = float(np.clip((point - a) @ span / max(float(span @ span), 1e-12), 0.0, 1.0))
    return float(np.linalg.norm(point - (a + t * span)))


def border_lab(image: Image.Image) -> np.ndarray:
    """Median CIELAB (3,) of the pixels within BORDER of the edge: the background's colour."""
    lab = image_lab(image)
    edge = np.ones(lab.shape[:2], dtype=bool)
    edge[BORDER:-BORDER, BORDER:-BORDER] = False
    return np.median(lab[edge], axis=0)


def off_the_way(frames: list[Image.Image], judge: ShapesClassifier) -> list[list[str]]:
    """For each in-between of `frames` (keyframe, in-betweens, keyframe), why it is off the way (empty: on it)."""
    read = judge.predict(frames)
    first, last = read[0], read[-1]
    borders = [border_lab(frame) for frame in frames]
    reasons = []
    for seen, border in zip(read[1:-1], borders[1:-1], strict=True):
        why = [f"{name} {seen[name]}" for name in ("shape", "size") if seen[name] not in (first[name], last[name])]
        for name in ("colour", "background"):
            ends = NAMED_LAB[first[name]], NAMED_LAB[last[name]]
            if segment_distance(NAMED_LAB[seen[name]], *ends) > COLOUR_TOLERANCE:
                why.append(f"{name} {seen[name]}")
        ends = np.array(POSITIONS[first["position"]]), np.array(POSITIONS[last["position"]])
        if segment_distance(np.array(POSITIONS[seen["position"]]), *ends) > POSITION_TOLERANCE:
            why.append(f"position {seen['position']}")
        if segment_distance(border, borders[0], borders[-1]) > COLOUR_TOLERANCE:
            why.append("border colour " + "/".join(f"{v:.0f}" for v in border))
        reasons.append(why)
    return reasons
