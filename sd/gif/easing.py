"""Easing: how the blend weight moves from 0 to 1 between two keyframes.

linear moves at constant speed, so the motion jerks at each keyframe where the speed changes; smooth
(a half cosine, (1 - cos(pi t)) / 2) slows down into and out of every keyframe.
"""

from __future__ import annotations

import math


def linear(t: float) -> float:
    return t


def smooth(t: float) -> float:
    return (1.0 - math.cos(math.pi * t)) / 2.0


EASINGS = {"linear": linear, "smooth": smooth}
